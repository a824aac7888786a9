using System.Security.Cryptography;
using System.Text;

namespace Dts.Core.Security;

/// <summary>
/// AES-256-GCM over the secret's UTF-8 bytes, with a random 96-bit nonce per value and the user
/// name as associated data. Stored as <c>v1:</c> followed by base64 of nonce | ciphertext | tag,
/// so a later format can sit beside this one and be told apart.
/// </summary>
public sealed class AesGcmSecretCipher : ISecretCipher
{
    public const string Prefix = "v1:";
    private const int NonceSize = 12;
    private const int TagSize = 16;

    private readonly byte[] _key;

    public AesGcmSecretCipher(ReadOnlySpan<byte> key)
    {
        if (key.Length != SecretKeyFile.KeySize)
            throw new ArgumentException($"An AES-256 key is {SecretKeyFile.KeySize} bytes, not {key.Length}.", nameof(key));
        _key = key.ToArray();
    }

    public bool IsProtected(string stored) => stored.StartsWith(Prefix, StringComparison.Ordinal);

    public string Protect(string user, string plain)
    {
        ArgumentNullException.ThrowIfNull(user);
        ArgumentNullException.ThrowIfNull(plain);
        var plainBytes = Encoding.UTF8.GetBytes(plain);
        var blob = new byte[NonceSize + plainBytes.Length + TagSize];
        var nonce = blob.AsSpan(0, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        using (var aes = new AesGcm(_key, TagSize))
        {
            aes.Encrypt(nonce, plainBytes, blob.AsSpan(NonceSize, plainBytes.Length), blob.AsSpan(NonceSize + plainBytes.Length), Encoding.UTF8.GetBytes(user));
        }
        CryptographicOperations.ZeroMemory(plainBytes);
        return Prefix + Convert.ToBase64String(blob);
    }

    public string Unprotect(string user, string stored)
    {
        ArgumentNullException.ThrowIfNull(user);
        ArgumentNullException.ThrowIfNull(stored);
        if (!IsProtected(stored))
            throw new SecretDecryptionException($"The stored secret of user '{user}' is not in the {Prefix} format.");
        byte[] blob;
        try
        {
            blob = Convert.FromBase64String(stored[Prefix.Length..]);
        }
        catch (FormatException)
        {
            throw new SecretDecryptionException($"The stored secret of user '{user}' is not valid base64.");
        }
        if (blob.Length < NonceSize + TagSize)
            throw new SecretDecryptionException($"The stored secret of user '{user}' is too short to be an encrypted value.");
        var cipherLength = blob.Length - NonceSize - TagSize;
        var plain = new byte[cipherLength];
        try
        {
            using var aes = new AesGcm(_key, TagSize);
            aes.Decrypt(blob.AsSpan(0, NonceSize), blob.AsSpan(NonceSize, cipherLength), blob.AsSpan(NonceSize + cipherLength), plain, Encoding.UTF8.GetBytes(user));
        }
        catch (AuthenticationTagMismatchException)
        {
            throw new SecretDecryptionException(
                $"The stored secret of user '{user}' cannot be decrypted: the key file is not the one the database was written with, or the row was altered.");
        }
        return Encoding.UTF8.GetString(plain);
    }
}
