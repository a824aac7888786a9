namespace Dts.Core.Security;

/// <summary>
/// Turns users' signing secrets into the text a store keeps, and back. Stores apply it on every
/// user write and read, so that nothing above the store sees ciphertext and nothing in the
/// database is plaintext. The user name is bound to the ciphertext, so a stored value copied onto
/// another user's row does not decrypt.
/// </summary>
public interface ISecretCipher
{
    /// <summary>The stored form of <paramref name="plain"/> for <paramref name="user"/>; a fresh random nonce every call.</summary>
    string Protect(string user, string plain);

    /// <summary>
    /// The plain secret from its stored form. Throws <see cref="SecretDecryptionException"/> when the
    /// value was not made with this key for this user; never includes the value in the message.
    /// </summary>
    string Unprotect(string user, string stored);

    /// <summary>True when <paramref name="stored"/> is in this cipher's current format (false for legacy plaintext).</summary>
    bool IsProtected(string stored);
}

/// <summary>A stored secret that the configured key cannot decrypt: the wrong key file, or a tampered row.</summary>
public sealed class SecretDecryptionException : Exception
{
    public SecretDecryptionException(string message)
        : base(message)
    {
    }

    public SecretDecryptionException()
    {
    }

    public SecretDecryptionException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
