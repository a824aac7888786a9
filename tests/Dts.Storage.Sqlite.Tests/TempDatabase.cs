namespace Dts.Storage.Sqlite.Tests;

/// <summary>A database file of its own for one test class instance, removed with its WAL files afterwards.</summary>
internal static class TempDatabase
{
    public static string NewPath()
    {
        var directory = Path.Combine(Path.GetTempPath(), "dts-sqlite-tests");
        Directory.CreateDirectory(directory);
        return Path.Combine(directory, $"{Guid.NewGuid():N}.db");
    }

    /// <summary>One key for the whole test run, so a test that reopens a file reads what it wrote.</summary>
    public static readonly Dts.Core.Security.ISecretCipher Cipher =
        new Dts.Core.Security.AesGcmSecretCipher(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    /// <summary>Store options for <paramref name="path"/> with the run's cipher, as the server would pass them.</summary>
    public static SqliteStoreOptions Options(string path) => new() { Path = path, SecretCipher = Cipher };

    public static void Delete(string path)
    {
        foreach (var file in new[] { path, path + "-wal", path + "-shm", path + "-journal" })
        {
            if (File.Exists(file)) File.Delete(file);
        }
    }
}
