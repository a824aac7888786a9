using Dts.Contracts;
using Dts.Testing;

namespace Dts.Server.Tests;

/// <summary>The <c>tag</c> filter of GET /v1/results: one batch run reads only its own results.</summary>
public sealed class ResultsTagTests
{
    [Fact]
    public async Task Results_WithTag_ReturnOnlyThatTagsJobs_AndLeaveTheOthersPending()
    {
        await using var server = await TestServer.StartAsync();
        using var client = await server.UserAsync("alice", Roles.Client);
        using var worker = await server.UserAsync("w", Roles.Worker);
        var workerId = await Flow.RegisterAsync(worker, "f");

        var runA = await Flow.SubmitAsync(client, """{"function":"f","tags":["run:a","x"]}""");
        var runB = await Flow.SubmitAsync(client, """{"function":"f","tags":["run:b"]}""");
        var untagged = await Flow.SubmitAsync(client, """{"function":"f"}""");
        foreach (var job in await Flow.LeaseAsync(worker, workerId))
            (await Flow.CompleteAsync(worker, job, "1")).Dispose();

        var a = await client.CallAsync(HttpMethod.Get, $"{ApiRoutes.Results}?tag=run%3Aa", null, DtsJsonContext.Default.ResultsResponse);
        Assert.Equal([runA.Id], a.Results.Select(j => j.Id));
        var b = await client.CallAsync(HttpMethod.Get, $"{ApiRoutes.Results}?tag=run%3Ab&max=10", null, DtsJsonContext.Default.ResultsResponse);
        Assert.Equal([runB.Id], b.Results.Select(j => j.Id));
        var none = await client.CallAsync(HttpMethod.Get, $"{ApiRoutes.Results}?tag=run%3Ac", null, DtsJsonContext.Default.ResultsResponse);
        Assert.Empty(none.Results);

        // Acknowledging run a's result leaves the others pending for an unfiltered reader.
        using (var ack = await client.PostAsync(ApiRoutes.ResultsAck, $$"""{"ids":["{{runA.Id}}"]}""")) ack.EnsureSuccessStatusCode();
        var rest = await Flow.ResultsAsync(client);
        Assert.Equal(new[] { runB.Id, untagged.Id }.Order(), rest.Results.Select(j => j.Id).Order());
    }

    [Theory]
    [InlineData("tag=")]
    [InlineData("tag=a&tag=b")]
    [InlineData("tag=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")]
    public async Task Results_WithAMalformedTag_AnswerInvalidQuery(string query)
    {
        await using var server = await TestServer.StartAsync();
        using var client = await server.UserAsync("alice", Roles.Client);
        using var response = await client.GetAsync($"{ApiRoutes.Results}?{query}");
        await ResponseAssert.ProblemAsync(response, ErrorCodes.InvalidQuery);
    }
}
