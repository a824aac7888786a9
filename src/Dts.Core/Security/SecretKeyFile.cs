using System.Security.Cryptography;

namespace Dts.Core.Security;

/// <summary>
/// The 32-byte key that encrypts users' secrets, kept in a file outside the database so that a copy
/// of the database alone reveals nothing. Created on first use readable and writable by its owner
/// only; refused when anyone else may read or write it, or when it is not exactly 32 bytes.
/// </summary>
public static class SecretKeyFile
{
    public const int KeySize = 32;
    public const string DefaultFileName = "secrets.key";

    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Reads the key at <paramref name="path"/>, creating a new random one when the file does not exist.</summary>
    /// <exception cref="SecretKeyFileException">The file is unsafe or unusable; the message says how to fix it.</exception>
    public static byte[] LoadOrCreate(string path)
    {
        var full = Path.GetFullPath(path);
        if (!File.Exists(full))
        {
            if (TryCreate(full) is { } created) return created;
            // Another process created it between the check and our create: read theirs.
        }
        return Load(full);
    }

    /// <summary>Reads an existing key file; never creates one.</summary>
    public static byte[] Load(string path)
    {
        var full = Path.GetFullPath(path);
        if (!File.Exists(full)) throw new SecretKeyFileException($"The key file {full} does not exist.");
        if (!OperatingSystem.IsWindows())
        {
            var mode = File.GetUnixFileMode(full);
            var loose = mode & ~OwnerOnly;
            if (loose != 0)
                throw new SecretKeyFileException(
                    $"The key file {full} has mode {Octal(mode)}; it holds the key to every user's secret, so it must be readable by its owner only: chmod 600 {full}");
        }
        byte[] key;
        try
        {
            key = File.ReadAllBytes(full);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new SecretKeyFileException($"Cannot read the key file {full}: {ex.Message}", ex);
        }
        if (key.Length != KeySize)
        {
            CryptographicOperations.ZeroMemory(key);
            throw new SecretKeyFileException(
                $"The key file {full} is {key.Length} bytes; a key file is exactly {KeySize} random bytes. Restore it from your backup.");
        }
        return key;
    }

    private static byte[]? TryCreate(string full)
    {
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        var key = RandomNumberGenerator.GetBytes(KeySize);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        // Created with owner-only permissions from the start, so there is no moment when others could read it.
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = OwnerOnly;
        try
        {
            using var stream = new FileStream(full, options);
            stream.Write(key);
            stream.Flush(flushToDisk: true);
        }
        catch (IOException) when (File.Exists(full))
        {
            CryptographicOperations.ZeroMemory(key);
            return null;
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new SecretKeyFileException($"Cannot create the key file {full}: {ex.Message}", ex);
        }
        return key;
    }

    private static string Octal(UnixFileMode mode) => "0" + Convert.ToString((int)mode, 8);
}

/// <summary>The key file is missing, unreadable, too open or the wrong size.</summary>
public sealed class SecretKeyFileException : Exception
{
    public SecretKeyFileException(string message)
        : base(message)
    {
    }

    public SecretKeyFileException()
    {
    }

    public SecretKeyFileException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
