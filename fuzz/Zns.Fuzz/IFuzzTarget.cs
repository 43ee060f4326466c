namespace Zns.Fuzz;

/// <summary>
/// A fuzz target: one entry point that takes arbitrary bytes, drives a piece of the target with them and throws
/// <see cref="FuzzFailureException"/> (or lets any other exception escape) when an invariant does not hold.
/// The same method runs under afl++ (<c>dotnet Zns.Fuzz.dll afl NAME</c>) and as a unit test over the committed
/// corpus in <c>fuzz/corpus/NAME/</c>.
/// </summary>
public interface IFuzzTarget
{
    /// <summary>Short name: the corpus directory and the command-line argument.</summary>
    static abstract string Name { get; }

    /// <summary>Runs one input. Must not throw for any input unless an invariant is broken.</summary>
    static abstract void Fuzz(ReadOnlySpan<byte> input);
}

/// <summary>The registry of fuzz targets, so the command line and the corpus tests share one list.</summary>
public static class FuzzTargets
{
    /// <summary>A target's entry point.</summary>
    public delegate void FuzzAction(ReadOnlySpan<byte> input);

    /// <summary>Every target, by name.</summary>
    public static IReadOnlyDictionary<string, FuzzAction> All { get; } = new Dictionary<string, FuzzAction>(StringComparer.Ordinal)
    {
        [PduParserTarget.Name] = PduParserTarget.Fuzz,
        [CommandDispatchTarget.Name] = CommandDispatchTarget.Fuzz,
        [ZoneStateLoaderTarget.Name] = ZoneStateLoaderTarget.Fuzz,
        [DhchapExchangeTarget.Name] = DhchapExchangeTarget.Fuzz,
    };

    /// <summary>Every type implementing <see cref="IFuzzTarget"/> in this assembly (to check none is left out).</summary>
    public static IEnumerable<Type> Types =>
        typeof(IFuzzTarget).Assembly.GetTypes().Where(t => t.IsClass && typeof(IFuzzTarget).IsAssignableFrom(t));
}

/// <summary>An invariant did not hold for an input; the message carries the input in hex.</summary>
public sealed class FuzzFailureException : Exception
{
    /// <summary>Creates the failure for <paramref name="input"/>.</summary>
    public FuzzFailureException(string message, ReadOnlySpan<byte> input)
        : base($"{message}\ninput ({input.Length} bytes): {Convert.ToHexString(input[..Math.Min(input.Length, 512)])}{(input.Length > 512 ? "…" : "")}")
    {
    }

    /// <summary>Throws when <paramref name="condition"/> is false.</summary>
    public static void Check(bool condition, string message, ReadOnlySpan<byte> input)
    {
        if (!condition)
        {
            throw new FuzzFailureException(message, input);
        }
    }
}
