using System.Net;
using System.Text.Json;
using Dts.Cli.Admin;
using Dts.Contracts;
using Spectre.Console;

namespace Dts.Client.Tests;

/// <summary>
/// The console's command table against a scripted admin API: which request each line sends, what is printed
/// (tables, selected fields, JSON), and how mistakes and failures come out.
/// </summary>
public sealed class AdminConsoleTests : IDisposable
{
    private const string Secret = "0123456789abcdef0123456789abcdef";
    private const string NewSecret = "feedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedface";

    internal const string Bob = """{"name":"bob","roles":["client","worker"],"disabled":false,"max_queued":100,"submit_rate":2.5,"created_at":"2026-01-01T00:00:00+00:00"}""";
    private const string Job = """{"id":"j1","function":"echo","state":"dead","owner":"alice","args":["x"],"attempts":3,"max_attempts":3,"created_at":"2026-01-02T00:00:00+00:00","updated_at":"2026-01-02T00:00:00+00:00","run_at":"2026-01-02T00:00:00+00:00"}""";
    private const string Worker = """{"id":"w1","name":"box-1","owner":"w","functions":["echo"],"concurrency":4,"running":1,"draining":true,"status":"alive","registered_at":"2026-01-01T00:00:00+00:00","last_heartbeat_at":"2026-01-01T00:00:05+00:00"}""";
    private const string Queue = """{"function":"echo","paused":true,"queued":7}""";

    private readonly FakeHandler _fake;
    private readonly DtsAdminClient _client;
    private readonly StringWriter _out = new();
    private readonly StringWriter _err = new();
    private readonly Microsoft.Extensions.Time.Testing.FakeTimeProvider _time = new(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));

    public AdminConsoleTests()
    {
        _fake = new FakeHandler((r, _) => Task.FromResult(Answer(r)));
        _client = new DtsAdminClient(new DtsConnection(Options(), _fake));
    }

    public void Dispose()
    {
        _client.Connection.Dispose();
        _client.Dispose();
    }

    private static DtsConnectionOptions Options() => new() { ServerUrl = "http://127.0.0.1:7070", UserId = "root", Secret = Secret };

    /// <summary>Canned answers shaped like the contract, chosen by method and path.</summary>
    private static HttpResponseMessage Answer(CapturedRequest r)
    {
        var path = r.Uri.AbsolutePath;
        string? json = (r.Method.Method, path) switch
        {
            ("POST", "/v1/admin/users") => $$"""{"user":{{Bob}},"secret":"{{NewSecret}}"}""",
            ("POST", "/v1/admin/users/bob/rotate-secret") => $$"""{"user":{{Bob}},"secret":"{{NewSecret}}"}""",
            ("GET" or "PATCH", "/v1/admin/users/bob") => Bob,
            ("DELETE", "/v1/admin/users/bob") => """{"name":"bob","cancelled_jobs":4}""",
            ("GET", "/v1/admin/users") => $$"""{"users":[{{Bob}},{"name":"root","roles":["administrator"],"created_at":"2026-01-01T00:00:00+00:00"}]}""",
            ("GET", "/v1/admin/workers") => $$"""{"workers":[{{Worker}}]}""",
            ("POST", "/v1/admin/workers/w1/drain") => Worker,
            ("GET", "/v1/admin/functions") => """{"functions":[{"function":"echo","queued":7,"running":1,"succeeded":40,"dead":2,"paused":false,"workers":["w1"]}]}""",
            ("GET", "/v1/admin/jobs") => $$"""{"jobs":[{{Job}}],"next_cursor":"page-2"}""",
            ("GET", "/v1/admin/jobs/j1") => Job,
            ("POST", "/v1/admin/jobs/j1/retry") => Job.Replace("\"dead\"", "\"queued\"", StringComparison.Ordinal),
            ("POST", "/v1/admin/jobs/j1/cancel") => Job.Replace("\"dead\"", "\"cancelled\"", StringComparison.Ordinal),
            ("POST", "/v1/admin/jobs/purge") => """{"purged":12}""",
            ("GET", "/v1/admin/queues") => $$"""{"queues":[{{Queue}}]}""",
            ("POST", "/v1/admin/queues/echo/pause") => Queue,
            ("POST", "/v1/admin/queues/echo/resume") => Queue.Replace("true", "false", StringComparison.Ordinal),
            _ => null,
        };
        return json is null
            ? FakeHandler.Json(HttpStatusCode.NotFound, """{"code":"user_not_found","title":"No such user.","status":404}""", "application/problem+json")
            : FakeHandler.Json(HttpStatusCode.OK, json);
    }

    private AdminConsole Console(bool json = false)
    {
        var ansi = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(_out),
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        // Wide enough that no cell wraps, so assertions can look for whole values.
        ansi.Profile.Width = 250;
        return new AdminConsole(_client, new AdminRenderer(ansi, _out, json), _err, _time);
    }

    private Task<int> Run(string line, bool json = false) =>
        Console(json).RunAsync(AdminLine.Parse(line)!, "error: ", TestContext.Current.CancellationToken);

    private CapturedRequest OnlyRequest() => Assert.Single(_fake.Requests);

    [Theory]
    [InlineData("user get bob", "GET", "/v1/admin/users/bob")]
    [InlineData("user list", "GET", "/v1/admin/users")]
    [InlineData("user delete bob", "DELETE", "/v1/admin/users/bob")]
    [InlineData("user rotate bob", "POST", "/v1/admin/users/bob/rotate-secret")]
    [InlineData("worker list", "GET", "/v1/admin/workers")]
    [InlineData("worker drain w1", "POST", "/v1/admin/workers/w1/drain")]
    [InlineData("function list", "GET", "/v1/admin/functions")]
    [InlineData("job list", "GET", "/v1/admin/jobs")]
    [InlineData("job get j1", "GET", "/v1/admin/jobs/j1")]
    [InlineData("job retry j1", "POST", "/v1/admin/jobs/j1/retry")]
    [InlineData("job cancel j1", "POST", "/v1/admin/jobs/j1/cancel")]
    [InlineData("queue list", "GET", "/v1/admin/queues")]
    [InlineData("queue pause echo", "POST", "/v1/admin/queues/echo/pause")]
    [InlineData("queue resume echo", "POST", "/v1/admin/queues/echo/resume")]
    public async Task EachLine_SendsItsRoute_AndSucceeds(string line, string method, string path)
    {
        var status = await Run(line);

        Assert.True(status == 0, _err.ToString());
        var request = OnlyRequest();
        Assert.Equal(method, request.Method.Method);
        Assert.Equal(path, request.Uri.AbsolutePath);
        Assert.Equal("", _err.ToString());
        Assert.NotEqual("", _out.ToString().Trim());
    }

    [Fact]
    public async Task UserAdd_PostsNameRolesAndLimits_AndPrintsTheSecret()
    {
        var status = await Run("user add bob roles=client,worker max_queued=100 submit_rate=2.5 submit_burst=5 functions=\"f, g\"");

        Assert.Equal(0, status);
        var request = OnlyRequest();
        Assert.Equal(HttpMethod.Post, request.Method);
        Assert.Equal("""{"name":"bob","roles":["client","worker"],"max_queued":100,"submit_rate":2.5,"submit_burst":5,"functions":["f","g"]}""", request.BodyText);
        var text = _out.ToString();
        Assert.Contains("secret: " + NewSecret, text, StringComparison.Ordinal);
        Assert.Contains("client,worker", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UserSet_SendsOnlyTheGivenFields_NoneClearsALimit()
    {
        var status = await Run("user set bob roles=\"client,worker\" disabled=true max_queued=none");

        Assert.Equal(0, status);
        var request = OnlyRequest();
        Assert.Equal(HttpMethod.Patch, request.Method);
        Assert.Equal("""{"roles":["client","worker"],"disabled":true,"max_queued":0}""", request.BodyText);
    }

    [Theory]
    [InlineData("user disable bob", """{"disabled":true}""")]
    [InlineData("user enable bob", """{"disabled":false}""")]
    public async Task DisableAndEnable_PatchTheDisabledFlag(string line, string body)
    {
        Assert.Equal(0, await Run(line));

        var request = OnlyRequest();
        Assert.Equal(HttpMethod.Patch, request.Method);
        Assert.Equal("/v1/admin/users/bob", request.Uri.AbsolutePath);
        Assert.Equal(body, request.BodyText);
    }

    [Fact]
    public async Task UserGet_WithFieldNames_ShowsOnlyThoseFields()
    {
        Assert.Equal(0, await Run("user get bob name roles"));

        var text = _out.ToString();
        Assert.Contains("bob", text, StringComparison.Ordinal);
        Assert.Contains("client,worker", text, StringComparison.Ordinal);
        Assert.DoesNotContain("max_queued", text, StringComparison.Ordinal);
        Assert.DoesNotContain("created_at", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UserGet_Json_IsOneDocumentWithTheNamedFieldsInOrder()
    {
        Assert.Equal(0, await Run("user get bob roles name", json: true));

        Assert.Equal("""{"roles":["client","worker"],"name":"bob"}""" + Environment.NewLine, _out.ToString());
    }

    [Fact]
    public async Task UserList_Json_KeepsTheApiShape_WithSelectedFields()
    {
        Assert.Equal(0, await Run("user list name disabled", json: true));

        var lines = _out.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        var doc = JsonDocument.Parse(Assert.Single(lines)).RootElement;
        var users = doc.GetProperty("users").EnumerateArray().ToList();
        Assert.Equal(2, users.Count);
        Assert.Equal(["name", "disabled"], users[0].EnumerateObject().Select(p => p.Name));
        Assert.Equal("root", users[1].GetProperty("name").GetString());
        // A field the answer left out is shown as null rather than dropped, so every row has the same shape.
        Assert.Equal(JsonValueKind.False, users[1].GetProperty("disabled").ValueKind);
    }

    [Fact]
    public async Task UserList_Table_HasAColumnPerNamedField()
    {
        Assert.Equal(0, await Run("user list name max_queued"));

        var text = _out.ToString();
        var header = text.Split('\n').First(l => l.Contains("name", StringComparison.Ordinal));
        Assert.Contains("max_queued", header, StringComparison.Ordinal);
        Assert.DoesNotContain("roles", text, StringComparison.Ordinal);
        Assert.Contains("root", text, StringComparison.Ordinal);
        Assert.Contains("100", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UserAdd_Json_CarriesTheSecret()
    {
        Assert.Equal(0, await Run("user add bob roles=client", json: true));

        var doc = JsonDocument.Parse(_out.ToString()).RootElement;
        Assert.Equal(NewSecret, doc.GetProperty("secret").GetString());
        Assert.Equal("bob", doc.GetProperty("user").GetProperty("name").GetString());
    }

    [Fact]
    public async Task JobList_SendsFiltersAsQuery_AndSaysHowToGetTheNextPage()
    {
        Assert.Equal(0, await Run("job list state=dead function=echo owner=alice tag=nightly since=2h until=2026-03-01T11:30:00Z limit=10 id state"));

        var query = OnlyRequest().Uri.Query;
        Assert.Equal("?state=dead&function=echo&owner=alice&tag=nightly&created_after=2026-03-01T10%3A00%3A00.000Z&created_before=2026-03-01T11%3A30%3A00.000Z&limit=10", query);
        var text = _out.ToString();
        Assert.Contains("j1", text, StringComparison.Ordinal);
        Assert.DoesNotContain("owner", text.Split('\n').First(l => l.Contains("id", StringComparison.Ordinal)), StringComparison.Ordinal);
        Assert.Contains("job list state=dead function=echo owner=alice tag=nightly since=2h until=2026-03-01T11:30:00Z limit=10 cursor=page-2 id state", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task JobList_Cursor_IsPassedOn_AndJsonHasNextCursor()
    {
        Assert.Equal(0, await Run("job list cursor=page-2", json: true));

        Assert.Equal("?cursor=page-2", OnlyRequest().Uri.Query);
        var doc = JsonDocument.Parse(_out.ToString()).RootElement;
        Assert.Equal("page-2", doc.GetProperty("next_cursor").GetString());
        Assert.Equal("j1", doc.GetProperty("jobs")[0].GetProperty("id").GetString());
    }

    [Fact]
    public async Task JobGet_Fields_AndArgsAsJson()
    {
        Assert.Equal(0, await Run("job get j1 state args", json: true));

        Assert.Equal("""{"state":"dead","args":["x"]}""" + Environment.NewLine, _out.ToString());
    }

    [Fact]
    public async Task JobPurge_SendsStatesFunctionOwnerAndTime()
    {
        Assert.Equal(0, await Run("job purge state=dead,cancelled function=echo owner=alice before=1d"));

        var request = OnlyRequest();
        Assert.Equal("""{"states":["dead","cancelled"],"function":"echo","owner":"alice","finished_before":"2026-02-28T12:00:00+00:00"}""", request.BodyText);
        Assert.Contains("purged 12 job(s)", _out.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task UserDelete_SaysHowManyJobsWereCancelled()
    {
        Assert.Equal(0, await Run("user delete bob"));

        Assert.Contains("deleted user bob; 4 unfinished job(s) cancelled", _out.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task NamesAreEscaped_AsOnePathSegment()
    {
        await Run("user get \"a/b c\"");

        Assert.Equal("/v1/admin/users/a%2Fb%20c", OnlyRequest().Uri.AbsolutePath);
    }

    [Theory]
    [InlineData("frob list", "unknown module 'frob'")]
    [InlineData("user frob", "unknown action 'user frob'")]
    [InlineData("user", "user needs an action")]
    [InlineData("user get", "user get needs NAME")]
    [InlineData("job retry", "job retry needs ID")]
    [InlineData("user add bob colour=red", "does not take colour=")]
    [InlineData("user add bob max_queued=lots", "max_queued=lots")]
    [InlineData("user set bob disabled=maybe", "expected true or false")]
    [InlineData("user set bob", "at least one key=value")]
    [InlineData("user get bob shoe_size", "unknown field 'shoe_size'")]
    [InlineData("job list state=asleep", "state=asleep")]
    [InlineData("job list limit=0", "from 1 to 1000")]
    [InlineData("job list since=yesterday", "since=yesterday")]
    [InlineData("job purge state=queued", "finished states only")]
    [InlineData("worker drain w1 w2", "does not take 'w2'")]
    public async Task Mistakes_PrintOneLine_ExitTwo_AndSendNothing(string line, string expected)
    {
        var status = await Run(line);

        Assert.Equal(2, status);
        var error = Assert.Single(_err.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: ", error, StringComparison.Ordinal);
        Assert.Contains(expected, error, StringComparison.Ordinal);
        Assert.Empty(_fake.Requests);
        Assert.Equal("", _out.ToString());
    }

    [Fact]
    public async Task ServerProblem_PrintsItsCode_OnOneLine_ExitOne()
    {
        var status = await Run("user get nobody");

        Assert.Equal(1, status);
        Assert.Equal("error: user_not_found (HTTP 404): No such user." + Environment.NewLine, _err.ToString());
    }

    [Fact]
    public async Task Prompt_RunsLinesUntilExit_AndGoesOnAfterErrors()
    {
        var input = new TextAdminInput(new StringReader("""
            user get bob name
            bogus
            user get nobody

            user set bob roles="unclosed
            user list name
            exit
            user delete bob
            """));

        var status = await Console().RunPromptAsync(input, TestContext.Current.CancellationToken);

        Assert.Equal(0, status);
        var errors = _err.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, errors.Length);
        Assert.Contains("unknown module 'bogus'", errors[0], StringComparison.Ordinal);
        Assert.Contains("user_not_found", errors[1], StringComparison.Ordinal);
        Assert.Contains("unclosed double quote", errors[2], StringComparison.Ordinal);
        // The line after exit is never run.
        Assert.Equal(["/v1/admin/users/bob", "/v1/admin/users/nobody", "/v1/admin/users"], _fake.Requests.Select(r => r.Uri.AbsolutePath));
        Assert.Contains("root", _out.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("quit")]
    [InlineData("")]
    public async Task Prompt_EndsOnQuitOrEndOfInput(string last)
    {
        var status = await Console().RunPromptAsync(new TextAdminInput(new StringReader("user get bob\n" + last)), TestContext.Current.CancellationToken);

        Assert.Equal(0, status);
        Assert.Single(_fake.Requests);
    }

    [Fact]
    public async Task Interrupt_CancelsTheRunningRequest_AndThePromptGoesOn()
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var handler = new HangingHandler(started);
        using var client = new DtsAdminClient(new DtsConnection(Options(), handler));
        var ansi = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(_out), Ansi = AnsiSupport.No });
        var console = new AdminConsole(client, new AdminRenderer(ansi, _out, json: true), _err);

        var prompt = console.RunPromptAsync(new TextAdminInput(new StringReader("worker list\nuser get bob\n")), TestContext.Current.CancellationToken);
        await started.Task.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        Assert.True(console.Interrupt());
        var status = await prompt.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);

        Assert.Equal(0, status);
        Assert.Equal("error: cancelled" + Environment.NewLine, _err.ToString());
        Assert.Contains("\"name\":\"bob\"", _out.ToString(), StringComparison.Ordinal);
        Assert.False(console.Interrupt());
    }

    /// <summary>Never answers the worker list (until cancelled); answers anything else with bob.</summary>
    private sealed class HangingHandler(TaskCompletionSource started) : HttpMessageHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request.RequestUri!.AbsolutePath == AdminRoutes.Workers)
            {
                started.TrySetResult();
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            return FakeHandler.Json(HttpStatusCode.OK, Bob);
        }
    }
}
