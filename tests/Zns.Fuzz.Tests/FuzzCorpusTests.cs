namespace Zns.Fuzz.Tests;

/// <summary>
/// The fuzz targets as ordinary tests: every committed corpus file (fuzz/corpus/TARGET/*) through every target
/// (a file found for one target is still arbitrary bytes for the others), plus a few thousand seeded random inputs.
/// </summary>
public sealed class FuzzCorpusTests
{
    private static readonly string CorpusRoot = FindCorpus();

    private static string FindCorpus()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "fuzz", "corpus");
            if (File.Exists(Path.Combine(dir.FullName, "zns.slnx")) && Directory.Exists(candidate))
                return candidate;
        }
        throw new DirectoryNotFoundException("fuzz/corpus not found above " + AppContext.BaseDirectory);
    }

    public static TheoryData<string, string> CorpusFiles()
    {
        var data = new TheoryData<string, string>();
        foreach (string target in FuzzTargets.All.Keys.Order(StringComparer.Ordinal))
        {
            foreach (string file in Directory.GetFiles(CorpusRoot, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
                data.Add(target, Path.GetRelativePath(CorpusRoot, file));
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(CorpusFiles))]
    public void CorpusFileHoldsEveryInvariant(string target, string file) =>
        FuzzTargets.All[target](File.ReadAllBytes(Path.Combine(CorpusRoot, file)));

    [Fact]
    public void EveryTargetIsRegisteredAndHasACorpus()
    {
        var names = FuzzTargets.Types
            .Select(t => (string)t.GetProperty(nameof(IFuzzTarget.Name), System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)!.GetValue(null)!)
            .ToHashSet();
        Assert.Equal(names.Order(), FuzzTargets.All.Keys.Order());
        foreach (string name in names)
        {
            string dir = Path.Combine(CorpusRoot, name);
            Assert.True(Directory.Exists(dir) && Directory.GetFiles(dir).Length > 0, $"no corpus for {name}");
        }
    }

    [Theory]
    [InlineData("pdu-parser", 3000)]
    [InlineData("command-dispatch", 300)]
    [InlineData("zone-state-loader", 300)]
    [InlineData("dhchap-exchange", 300)]
    public void SeededRandomInputs(string target, int count)
    {
        var random = new Random(20260101);
        var fuzz = FuzzTargets.All[target];
        var corpus = Directory.GetFiles(Path.Combine(CorpusRoot, target)).Select(File.ReadAllBytes).ToArray();
        for (int i = 0; i < count; i++)
        {
            // Half pure noise, half a corpus file with a few bytes flipped (closer to what afl does).
            byte[] input;
            if (i % 2 == 0 || corpus.Length == 0)
            {
                input = new byte[random.Next(0, 300)];
                random.NextBytes(input);
            }
            else
            {
                input = (byte[])corpus[random.Next(corpus.Length)].Clone();
                for (int f = 0; f < 1 + random.Next(4) && input.Length > 0; f++)
                    input[random.Next(input.Length)] ^= (byte)(1 << random.Next(8));
            }
            fuzz(input);
        }
    }
}
