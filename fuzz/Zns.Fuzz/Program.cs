using SharpFuzz;
using Zns.Fuzz;

// zns fuzz harness.
//   afl NAME           run target NAME under afl-fuzz (input on stdin, persistent mode via SharpFuzz)
//   replay NAME PATH…  run target NAME once per file (or per file in each directory) and report failures
//   list               print the target names
//   seed DIR           write the hand-made seeds to DIR/NAME/seed-*
if (args.Length == 2 && args[0] == "seed")
{
    foreach (var (name, seed, bytes) in Seeds.All())
    {
        Directory.CreateDirectory(Path.Combine(args[1], name));
        File.WriteAllBytes(Path.Combine(args[1], name, $"seed-{seed}"), bytes);
    }
    return 0;
}
if (args.Length >= 1 && args[0] == "list")
{
    foreach (string name in FuzzTargets.All.Keys)
        Console.WriteLine(name);
    return 0;
}
if (args.Length < 2 || !FuzzTargets.All.TryGetValue(args[1], out var target))
{
    Console.Error.WriteLine($"usage: Zns.Fuzz afl|replay TARGET [PATH...]  (targets: {string.Join(", ", FuzzTargets.All.Keys)})");
    return 2;
}
switch (args[0])
{
    case "afl":
        Fuzzer.Run(stream =>
        {
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            target(copy.GetBuffer().AsSpan(0, (int)copy.Length));
        });
        return 0;
    case "replay":
        int failures = 0, runs = 0;
        foreach (string path in args.Skip(2).SelectMany(p => Directory.Exists(p) ? Directory.GetFiles(p) : [p]))
        {
            runs++;
            try
            {
                target(File.ReadAllBytes(path));
            }
            catch (Exception e)
            {
                failures++;
                Console.Error.WriteLine($"{path}: {e}");
            }
        }
        Console.WriteLine($"{runs} inputs, {failures} failures");
        return failures == 0 ? 0 : 1;
    default:
        Console.Error.WriteLine($"unknown command {args[0]}");
        return 2;
}
