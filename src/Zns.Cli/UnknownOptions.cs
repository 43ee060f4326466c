using System.CommandLine;
using System.CommandLine.Parsing;

namespace Zns.Cli;

/// <summary>
/// A command whose FILE argument takes any number of values would otherwise swallow a misspelt option as a file
/// name (and <c>zns serve</c> would create it): a FILE value that looks like an option and does not come after
/// <c>--</c> is refused instead.
/// </summary>
internal static class UnknownOptions
{
    /// <summary>The first command-argument token that looks like an option, or null.</summary>
    public static string? Find(ParseResult parse)
    {
        int doubleDash = -1;
        for (int i = 0; i < parse.Tokens.Count; i++)
        {
            if (parse.Tokens[i].Type == TokenType.DoubleDash)
            {
                doubleDash = i;
                break;
            }
        }
        for (CommandResult? command = parse.CommandResult; command is not null; command = command.Parent as CommandResult)
        {
            foreach (var child in command.Children)
            {
                if (child is not ArgumentResult argument)
                    continue;
                foreach (var token in argument.Tokens)
                {
                    if (!LooksLikeOption(token.Value))
                        continue;
                    int at = IndexOf(parse.Tokens, token);
                    if (doubleDash < 0 || at < doubleDash)
                        return token.Value;
                }
            }
        }
        return null;
    }

    /// <summary>"-x", "--name"; a lone "-" and negative numbers are values.</summary>
    private static bool LooksLikeOption(string value) =>
        value.Length > 1 && value[0] == '-' && !char.IsAsciiDigit(value[1]);

    private static int IndexOf(IReadOnlyList<Token> tokens, Token token)
    {
        for (int i = 0; i < tokens.Count; i++)
        {
            if (ReferenceEquals(tokens[i], token))
                return i;
        }
        return -1;
    }
}
