using System.CommandLine;
using System.CommandLine.Parsing;
using Zns.Target.Fabrics.Auth;

namespace Zns.Cli;

/// <summary>
/// The DH-HMAC-CHAP options of <c>zns serve</c>: <c>--dhchap-key</c>, <c>--dhchap-ctrl-key</c>, <c>--dhchap-hash</c> and
/// <c>--dhchap-dhgroup</c> belong to the <c>--allow-host</c> before them; <c>--dhchap-keys FILE</c> reads the same
/// settings from a file only its owner may read.
/// </summary>
internal sealed class AuthenticationOptions
{
    private const string HostOption = "--allow-host";
    private const string KeyOption = "--dhchap-key";
    private const string CtrlKeyOption = "--dhchap-ctrl-key";
    private const string HashOption = "--dhchap-hash";
    private const string DhGroupOption = "--dhchap-dhgroup";
    private const string KeysFileOption = "--dhchap-keys";

    private readonly Option<string[]> _key = new(KeyOption) { Description = "DH-HMAC-CHAP secret (DHHC-1:hh:...:, from `nvme gen-dhchap-key`) the preceding --allow-host must prove it holds", Arity = ArgumentArity.OneOrMore, AllowMultipleArgumentsPerToken = false };
    private readonly Option<string[]> _ctrlKey = new(CtrlKeyOption) { Description = "Controller secret for bidirectional authentication of the preceding --allow-host (its --dhchap-ctrl-secret)", Arity = ArgumentArity.OneOrMore, AllowMultipleArgumentsPerToken = false };
    private readonly Option<string[]> _hash = new(HashOption) { Description = "Hash functions the preceding --allow-host may use, preferred first (sha256,sha384,sha512; default all)", Arity = ArgumentArity.OneOrMore, AllowMultipleArgumentsPerToken = false };
    private readonly Option<string[]> _dhGroup = new(DhGroupOption) { Description = "DH groups the preceding --allow-host may use, preferred first (ffdhe2048,...,ffdhe8192,null; default all, null last)", Arity = ArgumentArity.OneOrMore, AllowMultipleArgumentsPerToken = false };
    private readonly Option<string> _keysFile = new(KeysFileOption) { Description = "File of 'HOSTNQN KEY [CTRL-KEY] [hash=LIST] [dhgroup=LIST]' lines; must not be readable by group or others" };

    public void AddTo(Command command)
    {
        command.Options.Add(_key);
        command.Options.Add(_ctrlKey);
        command.Options.Add(_hash);
        command.Options.Add(_dhGroup);
        command.Options.Add(_keysFile);
    }

    /// <summary>
    /// The per-host settings, and the hosts they add to the allow-list (those of the keys file). Walks the tokens in
    /// order so that each option binds to the --allow-host before it.
    /// </summary>
    public Dictionary<string, HostAuthentication> Parse(ParseResult result, List<string> allowedHosts)
    {
        var builders = new Dictionary<string, Builder>(StringComparer.Ordinal);
        string? host = null;
        IReadOnlyList<Token> tokens = result.Tokens;
        for (int i = 0; i < tokens.Count; i++)
        {
            if (tokens[i].Type != TokenType.Option || i + 1 >= tokens.Count)
            {
                continue;
            }
            string name = tokens[i].Value;
            string value = tokens[i + 1].Value;
            if (name == HostOption)
            {
                host = value;
                continue;
            }
            if (name is not (KeyOption or CtrlKeyOption or HashOption or DhGroupOption))
            {
                continue;
            }
            if (host is null)
            {
                throw new UsageException($"{name}: must follow the --allow-host NQN it belongs to (e.g. --allow-host nqn.2014-08.org.nvmexpress:uuid:... {name} ...)");
            }
            Builder b = builders.TryGetValue(host, out Builder? existing) ? existing : builders[host] = new Builder(host);
            b.Set(name, value, name);
        }
        if (result.GetValue(_keysFile) is { } file)
        {
            foreach (Builder b in ReadKeysFile(file))
            {
                if (builders.ContainsKey(b.Host))
                {
                    throw new UsageException($"{file}: host {b.Host} also has keys on the command line");
                }
                builders[b.Host] = b;
                if (!allowedHosts.Contains(b.Host))
                {
                    allowedHosts.Add(b.Host);
                }
            }
        }
        return builders.ToDictionary(p => p.Key, p => p.Value.Build());
    }

    private static List<Builder> ReadKeysFile(string path)
    {
        if (!File.Exists(path))
        {
            throw new UsageException($"{KeysFileOption}: {path}: no such file");
        }
        if (!OperatingSystem.IsWindows())
        {
            UnixFileMode mode = File.GetUnixFileMode(path);
            const UnixFileMode others = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute |
                                        UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
            if ((mode & others) != 0)
            {
                throw new UsageException($"{KeysFileOption}: {path} is accessible by group or others (mode {Convert.ToString((int)mode, 8)}); " +
                                         $"it holds secrets: chmod 600 {path}");
            }
        }
        var list = new List<Builder>();
        int lineNumber = 0;
        foreach (string raw in File.ReadLines(path))
        {
            lineNumber++;
            string line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }
            string where = $"{path}:{lineNumber}";
            string[] fields = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 2)
            {
                throw new UsageException($"{where}: expected 'HOSTNQN KEY [CTRL-KEY] [hash=LIST] [dhgroup=LIST]'");
            }
            var b = new Builder(fields[0]);
            if (list.Any(x => x.Host == b.Host))
            {
                throw new UsageException($"{where}: host {b.Host} is listed twice");
            }
            b.Set(KeyOption, fields[1], $"{where}: host key");
            foreach (string field in fields.Skip(2))
            {
                if (field.StartsWith("hash=", StringComparison.Ordinal))
                {
                    b.Set(HashOption, field[5..], $"{where}: hash");
                }
                else if (field.StartsWith("dhgroup=", StringComparison.Ordinal))
                {
                    b.Set(DhGroupOption, field[8..], $"{where}: dhgroup");
                }
                else if (field.StartsWith("DHHC-1:", StringComparison.Ordinal))
                {
                    b.Set(CtrlKeyOption, field, $"{where}: controller key");
                }
                else
                {
                    throw new UsageException($"{where}: unknown field '{(field.Length > 16 ? field[..16] + "..." : field)}' (expected a controller key, hash=LIST or dhgroup=LIST)");
                }
            }
            list.Add(b);
        }
        return list;
    }

    private sealed class Builder(string host)
    {
        private DhchapKey? _key;
        private DhchapKey? _ctrlKey;
        private List<byte>? _hashes;
        private List<byte>? _groups;

        public string Host { get; } = host;

        public void Set(string option, string value, string field)
        {
            switch (option)
            {
                case KeyOption:
                    _key = _key is null ? ParseKey(value, field) : throw new UsageException($"{field}: host {Host} has two host keys");
                    break;
                case CtrlKeyOption:
                    _ctrlKey = _ctrlKey is null ? ParseKey(value, field) : throw new UsageException($"{field}: host {Host} has two controller keys");
                    break;
                case HashOption:
                    _hashes = ParseList(value, field, DhchapHash.TryParse, "sha256, sha384, sha512");
                    break;
                default:
                    _groups = ParseList(value, field, DhGroup.TryParse, "null, ffdhe2048, ffdhe3072, ffdhe4096, ffdhe6144, ffdhe8192");
                    break;
            }
        }

        public HostAuthentication Build()
        {
            if (_key is null)
            {
                throw new UsageException($"{KeyOption}: host {Host} has DH-HMAC-CHAP settings but no --dhchap-key");
            }
            var auth = new HostAuthentication
            {
                HostKey = _key, ControllerKey = _ctrlKey,
                Hashes = _hashes ?? (IReadOnlyList<byte>)DhchapHash.All, DhGroups = _groups ?? (IReadOnlyList<byte>)DhGroup.All,
            };
            try
            {
                auth.Validate(Host);
            }
            catch (ArgumentException e)
            {
                throw new UsageException($"{(e.ParamName == nameof(HostAuthentication.ControllerKey) ? CtrlKeyOption : KeyOption)}: {e.Message}");
            }
            return auth;
        }

        private static DhchapKey ParseKey(string text, string field) =>
            DhchapKey.TryParse(text, out DhchapKey? key, out string error) ? key! : throw new UsageException($"{field}: {error}");

        private delegate bool TryParseId(string text, out byte id);

        private static List<byte> ParseList(string text, string field, TryParseId parse, string valid)
        {
            var ids = new List<byte>();
            foreach (string part in text.Split(',', StringSplitOptions.TrimEntries))
            {
                if (!parse(part, out byte id))
                {
                    throw new UsageException($"{field}: '{part}' is not one of {valid}");
                }
                if (!ids.Contains(id))
                {
                    ids.Add(id);
                }
            }
            return ids;
        }
    }
}
