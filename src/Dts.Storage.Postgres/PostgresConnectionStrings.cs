using System.Globalization;
using Npgsql;

namespace Dts.Storage.Postgres;

/// <summary>Recognises and normalises the PostgreSQL forms of a <c>--store</c> argument.</summary>
public static class PostgresConnectionStrings
{
    /// <summary>
    /// True for <c>postgres://</c> and <c>postgresql://</c> URLs and for keyword connection strings
    /// holding <c>Host=</c> (case-insensitive); anything else (a file path) is not PostgreSQL.
    /// </summary>
    public static bool LooksLikePostgres(string storeArgument)
    {
        if (string.IsNullOrWhiteSpace(storeArgument)) return false;
        var s = storeArgument.Trim();
        return s.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase)
            || s.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase)
            || s.Contains("host=", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>
    /// An Npgsql keyword connection string for <paramref name="storeArgument"/>: a URL
    /// <c>postgres://user:password@host:port/database?sslmode=require&amp;...</c> (user and password
    /// percent-decoded, port 5432 by default, query parameters as connection keywords) is converted;
    /// a keyword string is checked and passed on. Bad input throws <see cref="ArgumentException"/>
    /// whose message never holds the password.
    /// </summary>
    public static string Normalize(string storeArgument)
    {
        ArgumentNullException.ThrowIfNull(storeArgument);
        var s = storeArgument.Trim();
        if (s.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase) || s.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase))
            return FromUrl(s);
        if (!s.Contains("host=", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException("Not a PostgreSQL connection string: expected a postgres:// URL or keywords with Host=.", nameof(storeArgument));
        try
        {
            var builder = new NpgsqlConnectionStringBuilder(s);
            if (string.IsNullOrWhiteSpace(builder.Host))
                throw new ArgumentException("The PostgreSQL connection string has an empty Host.", nameof(storeArgument));
            return builder.ConnectionString;
        }
        catch (Exception e) when (e is ArgumentException or FormatException or KeyNotFoundException or InvalidCastException or OverflowException)
        {
            if (e is ArgumentException { ParamName: nameof(storeArgument) }) throw;
            // The driver's message may quote the offending value, which could be the password.
            throw new ArgumentException("The PostgreSQL connection string is not valid (check its keywords and values).", nameof(storeArgument));
        }
    }

    private static string FromUrl(string url)
    {
        var schemeEnd = url.IndexOf("://", StringComparison.Ordinal) + 3;
        var rest = url[schemeEnd..];
        string? query = null;
        var q = rest.IndexOf('?', StringComparison.Ordinal);
        if (q >= 0)
        {
            query = rest[(q + 1)..];
            rest = rest[..q];
        }
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        var authority = slash >= 0 ? rest[..slash] : rest;
        var database = slash >= 0 ? Decode(rest[(slash + 1)..], "database") : "";

        string? user = null, password = null;
        var at = authority.LastIndexOf('@');
        var hostPort = authority;
        if (at >= 0)
        {
            var userInfo = authority[..at];
            hostPort = authority[(at + 1)..];
            var colon = userInfo.IndexOf(':', StringComparison.Ordinal);
            if (colon >= 0)
            {
                user = Decode(userInfo[..colon], "user name");
                password = Decode(userInfo[(colon + 1)..], "password");
            }
            else
            {
                user = Decode(userInfo, "user name");
            }
        }

        string host;
        var port = 5432;
        if (hostPort.StartsWith('['))
        {
            // An IPv6 literal: [::1]:5432
            var close = hostPort.IndexOf(']', StringComparison.Ordinal);
            if (close < 0) throw new ArgumentException("The PostgreSQL URL has an unclosed '[' in its host.", nameof(url));
            host = hostPort[1..close];
            var after = hostPort[(close + 1)..];
            if (after.Length > 0)
            {
                if (!after.StartsWith(':')) throw new ArgumentException("The PostgreSQL URL has text after its IPv6 host.", nameof(url));
                port = ParsePort(after[1..]);
            }
        }
        else
        {
            var colon = hostPort.LastIndexOf(':');
            host = colon >= 0 ? hostPort[..colon] : hostPort;
            if (colon >= 0) port = ParsePort(hostPort[(colon + 1)..]);
            host = Decode(host, "host");
        }
        if (string.IsNullOrWhiteSpace(host)) throw new ArgumentException("The PostgreSQL URL has no host.", nameof(url));

        var builder = new NpgsqlConnectionStringBuilder { Host = host, Port = port };
        if (!string.IsNullOrEmpty(database)) builder.Database = database;
        if (!string.IsNullOrEmpty(user)) builder.Username = user;
        if (password is not null) builder.Password = password;
        if (!string.IsNullOrEmpty(query))
        {
            foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
            {
                var eq = pair.IndexOf('=', StringComparison.Ordinal);
                var key = Decode(eq >= 0 ? pair[..eq] : pair, "query parameter");
                var value = eq >= 0 ? Decode(pair[(eq + 1)..], "query parameter") : "";
                if (key.Equals("password", StringComparison.OrdinalIgnoreCase))
                {
                    builder.Password = value;
                    continue;
                }
                try
                {
                    builder[MapKeyword(key)] = value;
                }
                catch (Exception e) when (e is ArgumentException or FormatException or KeyNotFoundException or InvalidCastException or OverflowException)
                {
                    throw new ArgumentException($"The PostgreSQL URL has an unknown or invalid parameter '{key}'.", nameof(url));
                }
            }
        }
        return builder.ConnectionString;
    }

    // libpq spells a few keywords differently from Npgsql.
    private static string MapKeyword(string key) => key.ToLowerInvariant() switch
    {
        "sslmode" => "SSL Mode",
        "sslrootcert" => "Root Certificate",
        "sslcert" => "SSL Certificate",
        "sslkey" => "SSL Key",
        "connect_timeout" => "Timeout",
        "application_name" => "Application Name",
        "target_session_attrs" => "Target Session Attributes",
        "options" => "Options",
        _ => key,
    };

    private static int ParsePort(string text)
    {
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
            throw new ArgumentException("The PostgreSQL URL has an invalid port (expected 1 to 65535).", "storeArgument");
        return port;
    }

    private static string Decode(string text, string what)
    {
        try
        {
            return Uri.UnescapeDataString(text);
        }
        catch (UriFormatException)
        {
            throw new ArgumentException($"The PostgreSQL URL has a badly encoded {what}.", "storeArgument");
        }
    }
}
