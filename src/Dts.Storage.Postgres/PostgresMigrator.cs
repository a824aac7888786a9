using System.Reflection;
using Npgsql;

namespace Dts.Storage.Postgres;

/// <summary>
/// Applies the embedded Migrations/NNNN_name.sql files that the schema's schema_migrations table
/// does not list yet, in order, in one transaction under a transaction-level advisory lock derived
/// from the schema name: servers starting at once wait for each other, and the later ones find
/// nothing left to do. A failure rolls everything back.
/// </summary>
internal static class PostgresMigrator
{
    private const string ResourcePrefix = "Dts.Storage.Postgres.Migrations.";

    public static IReadOnlyList<(int Version, string Name, string Sql)> Migrations { get; } = Load();

    private static List<(int, string, string)> Load()
    {
        var assembly = typeof(PostgresMigrator).Assembly;
        var list = new List<(int, string, string)>();
        foreach (var resource in assembly.GetManifestResourceNames())
        {
            if (!resource.StartsWith(ResourcePrefix, StringComparison.Ordinal) || !resource.EndsWith(".sql", StringComparison.Ordinal)) continue;
            var name = resource[ResourcePrefix.Length..^4];
            var underscore = name.IndexOf('_', StringComparison.Ordinal);
            if (underscore <= 0 || !int.TryParse(name.AsSpan(0, underscore), System.Globalization.NumberStyles.None,
                    System.Globalization.CultureInfo.InvariantCulture, out var version))
                throw new InvalidOperationException($"Migration resource '{resource}' is not named NNNN_name.sql.");
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream);
            list.Add((version, name, reader.ReadToEnd()));
        }
        list.Sort((a, b) => a.Item1.CompareTo(b.Item1));
        return list;
    }

    public static async Task MigrateAsync(PostgresJobStore store, CancellationToken cancellationToken)
    {
        await using var connection = await store.DataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var command = new NpgsqlCommand("SELECT pg_advisory_xact_lock(@key)", connection, transaction))
        {
            command.Parameters.AddWithValue("key", store.LockKey("migrate"));
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
        await using (var command = new NpgsqlCommand(store.S(
            "CREATE SCHEMA IF NOT EXISTS {s}; " +
            "CREATE TABLE IF NOT EXISTS {s}.schema_migrations (version integer PRIMARY KEY, name text NOT NULL, " +
            "applied_at timestamptz NOT NULL DEFAULT now())"), connection, transaction))
        {
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
        var applied = new HashSet<int>();
        await using (var command = new NpgsqlCommand(store.S("SELECT version FROM {s}.schema_migrations"), connection, transaction))
        await using (var r = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await r.ReadAsync(cancellationToken)) applied.Add(r.GetInt32(0));
        }
        foreach (var (version, name, sql) in Migrations)
        {
            if (applied.Contains(version)) continue;
            await using (var command = new NpgsqlCommand(sql.Replace("{schema}", store.QuotedSchema, StringComparison.Ordinal), connection, transaction))
                await command.ExecuteNonQueryAsync(cancellationToken);
            await using (var record = new NpgsqlCommand(store.S("INSERT INTO {s}.schema_migrations (version, name) VALUES (@v, @n)"), connection, transaction))
            {
                record.Parameters.AddWithValue("v", version);
                record.Parameters.AddWithValue("n", name);
                await record.ExecuteNonQueryAsync(cancellationToken);
            }
        }
        await transaction.CommitAsync(cancellationToken);
    }
}
