using Dts.Core.Security;
using Microsoft.Data.Sqlite;

namespace Dts.Storage.Sqlite;

/// <summary>
/// Runs after the schema migrations on every start. Encrypts secrets left in plaintext by versions
/// before encryption at rest (all of them, in one transaction, so the file never holds a mix that a
/// crash could leave half done), then checks that the configured key opens a stored secret, so that
/// a wrong key file stops the start with one clear error instead of failing every request.
/// </summary>
internal static class SecretMigration
{
    public static async Task RunAsync(SqliteConnection connection, ISecretCipher cipher, CancellationToken cancellationToken)
    {
        // Nearly always there is nothing to do: look without taking the write lock, which a running
        // server holds often (dts server add-user runs this beside it).
        if (await CountLegacyAsync(connection, cipher, cancellationToken) > 0)
        {
            await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(cancellationToken);
            var legacy = new List<(string Name, string Secret)>();
            await using (var select = connection.CreateCommand())
            {
                select.Transaction = transaction;
                select.CommandText = "SELECT name, secret FROM users";
                await using var r = await select.ExecuteReaderAsync(cancellationToken);
                while (await r.ReadAsync(cancellationToken))
                {
                    var secret = r.GetString(1);
                    if (!cipher.IsProtected(secret)) legacy.Add((r.GetString(0), secret));
                }
            }
            await using (var update = Sql.Command(connection, "UPDATE users SET secret = $secret WHERE name = $name", "$secret", "$name"))
            {
                update.Transaction = transaction;
                foreach (var (name, secret) in legacy)
                {
                    update.Parameters[0].Value = cipher.Protect(name, secret);
                    update.Parameters[1].Value = name;
                    await update.ExecuteNonQueryAsync(cancellationToken);
                }
            }
            await transaction.CommitAsync(cancellationToken);
        }

        await using var probe = connection.CreateCommand();
        probe.CommandText = "SELECT name, secret FROM users ORDER BY rowid LIMIT 1";
        await using var row = await probe.ExecuteReaderAsync(cancellationToken);
        if (await row.ReadAsync(cancellationToken))
        {
            // Throws SecretDecryptionException naming the user and the likely cause; the secret itself is discarded.
            _ = cipher.Unprotect(row.GetString(0), row.GetString(1));
        }
    }

    private static async Task<int> CountLegacyAsync(SqliteConnection connection, ISecretCipher cipher, CancellationToken cancellationToken)
    {
        await using var select = connection.CreateCommand();
        select.CommandText = "SELECT secret FROM users";
        var count = 0;
        await using var r = await select.ExecuteReaderAsync(cancellationToken);
        while (await r.ReadAsync(cancellationToken))
        {
            if (!cipher.IsProtected(r.GetString(0))) count++;
        }
        return count;
    }
}
