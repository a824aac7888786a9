using System.Globalization;
using System.Reflection;
using Microsoft.Data.Sqlite;

namespace Dts.Storage.Sqlite;

/// <summary>
/// Applies the embedded <c>Migrations/NNNN_name.sql</c> scripts in order, each in its own
/// transaction together with its row in <c>schema_migrations</c>, so a crash leaves either the
/// whole step or none of it.
/// </summary>
internal static class SqliteMigrator
{
    private const string ResourceMarker = ".Migrations.";

    public sealed record Migration(int Version, string Name, string Sql);

    public static IReadOnlyList<Migration> Embedded { get; } = LoadEmbedded();

    public static async Task MigrateAsync(SqliteConnection connection, CancellationToken cancellationToken)
    {
        await using (var setup = connection.CreateCommand())
        {
            // WAL is a property of the file; setting it here makes it hold before any other connection writes.
            setup.CommandText =
                "PRAGMA journal_mode = WAL; " +
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL);";
            await setup.ExecuteNonQueryAsync(cancellationToken);
        }

        foreach (var migration in Embedded)
        {
            // applied_at is for people reading the table; nothing depends on it, so the system clock will do.
            // BEGIN IMMEDIATE, and the check inside it, keep two processes starting at once from both applying a step.
            await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(cancellationToken);
            await using (var check = connection.CreateCommand())
            {
                check.Transaction = transaction;
                check.CommandText = "SELECT count(*) FROM schema_migrations WHERE version = $version";
                check.Parameters.AddWithValue("$version", migration.Version);
                if (Convert.ToInt64(await check.ExecuteScalarAsync(cancellationToken), CultureInfo.InvariantCulture) != 0) continue;
            }
            await using (var apply = connection.CreateCommand())
            {
                apply.Transaction = transaction;
                apply.CommandText = migration.Sql;
                await apply.ExecuteNonQueryAsync(cancellationToken);
            }
            await using (var record = connection.CreateCommand())
            {
                record.Transaction = transaction;
                record.CommandText = "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($version, $name, $at)";
                record.Parameters.AddWithValue("$version", migration.Version);
                record.Parameters.AddWithValue("$name", migration.Name);
                record.Parameters.AddWithValue("$at", TimeProvider.System.GetUtcNow().ToUnixTimeMilliseconds());
                await record.ExecuteNonQueryAsync(cancellationToken);
            }
            await transaction.CommitAsync(cancellationToken);
        }
    }

    private static List<Migration> LoadEmbedded()
    {
        var assembly = typeof(SqliteMigrator).Assembly;
        var migrations = new List<Migration>();
        foreach (var resource in assembly.GetManifestResourceNames())
        {
            var at = resource.IndexOf(ResourceMarker, StringComparison.Ordinal);
            if (at < 0 || !resource.EndsWith(".sql", StringComparison.Ordinal)) continue;
            var name = resource[(at + ResourceMarker.Length)..^".sql".Length];
            var underscore = name.IndexOf('_', StringComparison.Ordinal);
            if (underscore <= 0 || !int.TryParse(name.AsSpan(0, underscore), NumberStyles.None, CultureInfo.InvariantCulture, out var version))
                throw new InvalidOperationException($"Migration resource '{resource}' must be named NNNN_name.sql.");
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream);
            migrations.Add(new Migration(version, name, reader.ReadToEnd()));
        }
        migrations.Sort((a, b) => a.Version.CompareTo(b.Version));
        for (var i = 1; i < migrations.Count; i++)
        {
            if (migrations[i].Version == migrations[i - 1].Version)
                throw new InvalidOperationException($"Two migrations have version {migrations[i].Version}.");
        }
        return migrations;
    }
}
