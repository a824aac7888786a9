using System.Security.Cryptography;
using Dts.Core.Security;
using Dts.Storage.Postgres;
using Npgsql;

namespace Dts.Testing.Postgres;

/// <summary>
/// A PostgreSQL database for tests: the server named by the <c>DTS_TEST_PG</c> environment variable
/// (a connection string; ./test.sh starts a throwaway cluster and sets it) and a fresh, randomly
/// named schema per use, dropped with everything in it on disposal. Without <c>DTS_TEST_PG</c> the
/// test is skipped, unless <c>CI</c> is set: there a missing database is an error, not a skip.
/// </summary>
public sealed class PostgresTestDatabase : IAsyncDisposable
{
    public const string EnvironmentVariable = "DTS_TEST_PG";

    /// <summary>A fixed test key, so that stores opened on the same schema read each other's secrets.</summary>
    private static readonly byte[] TestKey = SHA256.HashData("dts test secret key"u8);

    private readonly List<string> _schemas = [];

    private PostgresTestDatabase(string connectionString)
    {
        ConnectionString = connectionString;
        Schema = NewSchemaName();
        _schemas.Add(Schema);
    }

    public string ConnectionString { get; }

    /// <summary>This database's schema (created by the first store's migration).</summary>
    public string Schema { get; }

    public static ISecretCipher Cipher { get; } = new AesGcmSecretCipher(TestKey);

    /// <summary>The connection string from the environment, or skips (fails under CI) the current test.</summary>
    public static string RequireConnectionString()
    {
        var value = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(value)) return value;
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI")))
            Assert.Fail($"{EnvironmentVariable} is not set, but CI is: the PostgreSQL tests must run in CI (./test.sh starts a cluster and sets it).");
        Assert.Skip($"{EnvironmentVariable} is not set: no PostgreSQL to test against (./test.sh starts one).");
        throw new InvalidOperationException("Unreachable.");
    }

    /// <summary>A fresh schema on the test server; skips the test when there is none.</summary>
    public static PostgresTestDatabase Create() => new(RequireConnectionString());

    public static string NewSchemaName() => "t_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));

    /// <summary>Another fresh schema, also dropped on disposal.</summary>
    public string NewSchema()
    {
        var schema = NewSchemaName();
        lock (_schemas) _schemas.Add(schema);
        return schema;
    }

    /// <summary>A new store on <paramref name="schema"/> (default: this database's), not yet migrated.</summary>
    public PostgresJobStore NewStore(string? schema = null) => new(Options(schema));

    public PostgresStoreOptions Options(string? schema = null) => new()
    {
        ConnectionString = ConnectionString,
        Schema = schema ?? Schema,
        SecretCipher = Cipher,
    };

    /// <summary>An open connection (pooled by Npgsql) for a test's own SQL.</summary>
    public async Task<NpgsqlConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync(cancellationToken);
        return connection;
    }

    public async ValueTask DisposeAsync()
    {
        string[] schemas;
        lock (_schemas) schemas = [.. _schemas];
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        foreach (var schema in schemas)
        {
            await using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS \"{schema}\" CASCADE", connection);
            await drop.ExecuteNonQueryAsync();
        }
    }
}
