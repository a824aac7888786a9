using Dts.Contracts;
using Dts.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Dts.Server.Tests;

/// <summary>A captured request cannot be replayed: not at once, not after a restart, not after the window.</summary>
public sealed class ReplayTests
{
    private const string Submit = """{"function":"f","args":[1]}""";

    [Fact]
    public async Task Replay_InsideTheWindow_IsRefused()
    {
        await using var server = await TestServer.StartAsync();
        using var alice = await server.UserAsync("alice", Roles.Client);
        var captured = new SignedHttp.Tweak { Nonce = RequestSigning.NewNonce(), Timestamp = server.Time.GetUtcNow().ToUnixTimeSeconds() };

        using (var first = await alice.PostAsync(ApiRoutes.Jobs, Submit, captured))
            Assert.Equal(System.Net.HttpStatusCode.Created, first.StatusCode);
        using var replay = await alice.PostAsync(ApiRoutes.Jobs, Submit, captured);
        await ResponseAssert.ProblemAsync(replay, ErrorCodes.ReplayedNonce);
    }

    [Fact]
    public async Task Replay_AfterARestartOnTheSameData_IsRefused()
    {
        using var dir = new TempDirectory("dts-replay");
        SignedHttp.Tweak captured;
        string secret;
        await using (var first = await TestServer.StartAsync(dataDirectory: dir.Path))
        {
            using var alice = await first.UserAsync("alice", Roles.Client);
            secret = alice.Secret;
            captured = new SignedHttp.Tweak { Nonce = RequestSigning.NewNonce(), Timestamp = first.Time.GetUtcNow().ToUnixTimeSeconds() };
            using var accepted = await alice.PostAsync(ApiRoutes.Jobs, Submit, captured);
            Assert.Equal(System.Net.HttpStatusCode.Created, accepted.StatusCode);
        }

        // A new process knows nothing in memory; only the store can tell.
        await using var second = await TestServer.StartAsync(dataDirectory: dir.Path);
        using var again = new SignedHttp(second.Url, "alice", secret, second.Time);
        using (var replay = await again.PostAsync(ApiRoutes.Jobs, Submit, captured))
            await ResponseAssert.ProblemAsync(replay, ErrorCodes.ReplayedNonce);

        // The user, with the secret decrypted by the same key file, still gets fresh requests through.
        using var fresh = await again.PostAsync(ApiRoutes.Jobs, Submit);
        Assert.Equal(System.Net.HttpStatusCode.Created, fresh.StatusCode);
    }

    [Fact]
    public async Task Replay_OutsideTheWindow_IsRefusedAsStale()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await TestServer.StartAsync(clock);
        using var alice = await server.UserAsync("alice", Roles.Client);
        var captured = new SignedHttp.Tweak { Nonce = RequestSigning.NewNonce(), Timestamp = clock.GetUtcNow().ToUnixTimeSeconds() };
        using (var first = await alice.PostAsync(ApiRoutes.Jobs, Submit, captured))
            Assert.Equal(System.Net.HttpStatusCode.Created, first.StatusCode);

        clock.Advance(server.Server.Context.Options.SignatureWindow + TimeSpan.FromSeconds(2));

        using var replay = await alice.PostAsync(ApiRoutes.Jobs, Submit, captured);
        await ResponseAssert.ProblemAsync(replay, ErrorCodes.StaleTimestamp);
    }
}
