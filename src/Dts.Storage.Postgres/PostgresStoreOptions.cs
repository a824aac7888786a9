using Dts.Core.Security;

namespace Dts.Storage.Postgres;

public sealed class PostgresStoreOptions
{
    /// <summary>The default schema every table of the store lives in.</summary>
    public const string DefaultSchema = "dts";

    /// <summary>An Npgsql keyword connection string (see <see cref="PostgresConnectionStrings.Normalize"/> for URLs).</summary>
    public required string ConnectionString { get; init; }

    /// <summary>
    /// The schema that holds every table: lower-case letters, digits and underscores, at most 48
    /// characters, not starting with pg_ (always quoted in SQL, so a leading digit is fine). Several stores (or test runs) can share one database
    /// in different schemas.
    /// </summary>
    public string Schema { get; init; } = DefaultSchema;

    /// <summary>Encrypts users' secrets on their way into the database and decrypts them on the way out.</summary>
    public required ISecretCipher SecretCipher { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> unless <paramref name="schema"/> is a valid schema name.</summary>
    public static void ValidateSchema(string? schema)
    {
        if (string.IsNullOrEmpty(schema) || schema.Length > 48)
            throw new ArgumentException("The PostgreSQL schema name must have 1 to 48 characters.", nameof(schema));
        if (schema.StartsWith("pg_", StringComparison.Ordinal))
            throw new ArgumentException($"The PostgreSQL schema name '{schema}' must not start with pg_ (reserved for the system).", nameof(schema));
        foreach (var c in schema)
        {
            if (c is not ((>= 'a' and <= 'z') or (>= '0' and <= '9') or '_'))
                throw new ArgumentException(
                    $"The PostgreSQL schema name '{schema}' may hold only lower-case letters, digits and underscores.", nameof(schema));
        }
    }
}
