using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Dts.Contracts;
using Dts.Core.Security;
using Dts.Testing;

namespace Dts.Server.Tests;

/// <summary>
/// Secrets encrypted at rest with a key file outside the database: neither the raw SQLite file
/// (with its WAL) nor anything the server logs contains a secret, and the key file is guarded.
/// </summary>
public sealed class SecretsAtRestTests
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    [Fact]
    public async Task RawDatabaseAndLogs_HoldNoSecret()
    {
        using var dir = new TempDirectory("dts-at-rest");
        var logs = new ConcurrentQueue<string>();
        var secrets = new List<string>();
        await using (var server = await TestServer.StartAsync(dataDirectory: dir.Path, log: logs.Enqueue))
        {
            secrets.Add((await File.ReadAllTextAsync(Path.Combine(dir.Path, "admin.secret"), TestContext.Current.CancellationToken)).Trim());
            foreach (var name in new[] { "alice", "bob", "carol" })
            {
                using var user = await server.UserAsync(name, Roles.Client, Roles.Worker);
                secrets.Add(user.Secret);
                // Exercise the read path too: authentication decrypts the stored secret.
                using var ok = await user.PostAsync(ApiRoutes.Jobs, """{"function":"f"}""");
                Assert.Equal(System.Net.HttpStatusCode.Created, ok.StatusCode);
                using var bad = await user.PostAsync(ApiRoutes.Jobs, """{"function":"f"}""", new SignedHttp.Tweak { Secret = "wrong" });
                await ResponseAssert.ProblemAsync(bad, ErrorCodes.BadSignature);
            }
            // Secrets made by the admin API (create, then rotate) are stored encrypted too, and work.
            using (var admin = new SignedHttp(server.Url, "admin", secrets[0], server.Time))
            {
                var created = await admin.CallAsync(HttpMethod.Post, AdminRoutes.Users, """{"name":"dave","roles":["client"]}""", AdminJsonContext.Default.UserSecretResponse);
                var rotated = await admin.CallAsync(HttpMethod.Post, AdminRoutes.UserRotateSecret("dave"), null, AdminJsonContext.Default.UserSecretResponse);
                secrets.Add(created.Secret);
                secrets.Add(rotated.Secret);
                using var dave = new SignedHttp(server.Url, "dave", rotated.Secret, server.Time);
                using var ok = await dave.PostAsync(ApiRoutes.Jobs, """{"function":"f"}""");
                Assert.Equal(System.Net.HttpStatusCode.Created, ok.StatusCode);
            }
            // While running the newest pages are in the WAL; read it before shutdown checkpoints it away.
            AssertNoSecretIn(ReadShared(Path.Combine(dir.Path, "dts.db")), secrets, "dts.db (running)");
            AssertNoSecretIn(ReadShared(Path.Combine(dir.Path, "dts.db-wal")), secrets, "dts.db-wal");
        }
        AssertNoSecretIn(ReadShared(Path.Combine(dir.Path, "dts.db")), secrets, "dts.db (stopped)");

        Assert.NotEmpty(logs);
        var allLogs = string.Join('\n', logs);
        foreach (var secret in secrets)
            Assert.DoesNotContain(secret, allLogs, StringComparison.OrdinalIgnoreCase);
        // The key is no secret of a user, but must not be logged either.
        var key = await File.ReadAllBytesAsync(Path.Combine(dir.Path, SecretKeyFile.DefaultFileName), TestContext.Current.CancellationToken);
        Assert.DoesNotContain(Convert.ToHexString(key), allLogs, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(Convert.ToBase64String(key), allLogs, StringComparison.Ordinal);
    }

    [Fact]
    public async Task KeyFile_IsCreatedOwnerOnly_InTheDataDirectoryOrWhereConfigured()
    {
        using var dir = new TempDirectory("dts-key");
        await using (await TestServer.StartAsync(dataDirectory: dir.Path))
        {
            var key = Path.Combine(dir.Path, SecretKeyFile.DefaultFileName);
            Assert.Equal(SecretKeyFile.KeySize, new FileInfo(key).Length);
            if (!OperatingSystem.IsWindows()) Assert.Equal(OwnerOnly, File.GetUnixFileMode(key));
        }

        using var elsewhere = new TempDirectory("dts-key-elsewhere");
        var custom = Path.Combine(elsewhere.Path, "keys", "dts.key");
        await using (await TestServer.StartAsync(configure: o => o.KeyFile = custom))
        {
            Assert.Equal(SecretKeyFile.KeySize, new FileInfo(custom).Length);
            if (!OperatingSystem.IsWindows()) Assert.Equal(OwnerOnly, File.GetUnixFileMode(custom));
        }
    }

    [Fact]
    public async Task KeyFile_ReadableByOthers_IsRefusedWithAClearError()
    {
        Assert.SkipWhen(OperatingSystem.IsWindows(), "Unix permissions only.");
        using var dir = new TempDirectory("dts-key-loose");
        await using (await TestServer.StartAsync(dataDirectory: dir.Path))
        {
        }
        var key = Path.Combine(dir.Path, SecretKeyFile.DefaultFileName);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(key, OwnerOnly | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        var ex = await Assert.ThrowsAsync<SecretKeyFileException>(() => TestServer.StartAsync(dataDirectory: dir.Path));
        Assert.Contains("0644", ex.Message, StringComparison.Ordinal);
        Assert.Contains("chmod 600", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task KeyFile_OfTheWrongSize_IsRefusedWithAClearError()
    {
        using var dir = new TempDirectory("dts-key-size");
        var key = Path.Combine(dir.Path, SecretKeyFile.DefaultFileName);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = OwnerOnly;
        await using (var f = new FileStream(key, options)) await f.WriteAsync(new byte[16], TestContext.Current.CancellationToken);

        var ex = await Assert.ThrowsAsync<SecretKeyFileException>(() => TestServer.StartAsync(dataDirectory: dir.Path));
        Assert.Contains("16 bytes", ex.Message, StringComparison.Ordinal);
        // A refused start leaves no database behind to confuse the next attempt.
        Assert.False(File.Exists(Path.Combine(dir.Path, "dts.db")));
    }

    [Fact]
    public async Task WrongKey_StopsTheStartWithAClearError_AndTheRightKeyStillWorks()
    {
        using var dir = new TempDirectory("dts-key-wrong");
        var keyPath = Path.Combine(dir.Path, SecretKeyFile.DefaultFileName);
        string secret;
        await using (var server = await TestServer.StartAsync(dataDirectory: dir.Path))
        {
            using var alice = await server.UserAsync("alice", Roles.Client);
            secret = alice.Secret;
        }
        var rightKey = await File.ReadAllBytesAsync(keyPath, TestContext.Current.CancellationToken);
        await File.WriteAllBytesAsync(keyPath, RandomNumberGenerator.GetBytes(SecretKeyFile.KeySize), TestContext.Current.CancellationToken);

        var ex = await Assert.ThrowsAsync<SecretDecryptionException>(() => TestServer.StartAsync(dataDirectory: dir.Path));
        Assert.Contains("key file", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(secret, ex.ToString(), StringComparison.Ordinal);

        // Restoring the key restores service: nothing was damaged by the failed start.
        await File.WriteAllBytesAsync(keyPath, rightKey, TestContext.Current.CancellationToken);
        await using var restored = await TestServer.StartAsync(dataDirectory: dir.Path);
        using var again = new SignedHttp(restored.Url, "alice", secret, restored.Time);
        using var ok = await again.PostAsync(ApiRoutes.Jobs, """{"function":"f"}""");
        Assert.Equal(System.Net.HttpStatusCode.Created, ok.StatusCode);
    }

    private static byte[] ReadShared(string path)
    {
        if (!File.Exists(path)) return [];
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var copy = new MemoryStream();
        f.CopyTo(copy);
        return copy.ToArray();
    }

    private static void AssertNoSecretIn(byte[] bytes, IEnumerable<string> secrets, string what)
    {
        foreach (var secret in secrets)
        {
            Assert.True(bytes.AsSpan().IndexOf(Encoding.UTF8.GetBytes(secret)) < 0, $"a secret appears in {what}");
            // Also not as the raw bytes the hex text stands for.
            Assert.True(bytes.AsSpan().IndexOf(Convert.FromHexString(secret)) < 0, $"a secret's bytes appear in {what}");
        }
    }
}
