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

    public static void Delete(string path)
    {
        foreach (var file in new[] { path, path + "-wal", path + "-shm", path + "-journal" })
        {
            if (File.Exists(file)) File.Delete(file);
        }
    }
}
