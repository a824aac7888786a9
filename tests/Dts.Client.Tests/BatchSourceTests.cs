using System.Text;
using System.Text.Json;
using Dts.Client.Batch;

namespace Dts.Client.Tests;

public sealed class BatchSourceTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<List<BatchRecord>> ReadAllAsync(InputFormat format, string text, int maxBytes = LineSource.DefaultMaxRecordBytes)
    {
        await using var source = LineSource.Create(format, new MemoryStream(Encoding.UTF8.GetBytes(text)), maxBytes);
        var records = new List<BatchRecord>();
        await foreach (var r in source.ReadAsync(Ct)) records.Add(r);
        return records;
    }

    [Fact]
    public async Task Text_EachLineIsOneJobWithTheLineAsItsOnlyArg_NewlineAndCrStripped()
    {
        var records = await ReadAllAsync(InputFormat.Text, "alpha\r\nbeta gamma\nlast");
        Assert.Equal([1L, 2L, 3L], records.Select(r => r.Number));
        Assert.Equal(["[\"alpha\"]", "[\"beta gamma\"]", "[\"last\"]"], records.Select(r => r.Args!.Value.GetRawText()));
        Assert.All(records, r => Assert.Null(r.Kwargs));
    }

    [Fact]
    public async Task Text_ABlankLine_IsAnErrorWithItsLineNumber_AndReadingGoesOn()
    {
        var records = await ReadAllAsync(InputFormat.Text, "a\n\n  \nb\n");
        Assert.Equal(4, records.Count);
        Assert.Equal((RecordErrors.BlankLine, 2L), (records[1].ErrorCode, records[1].Line));
        Assert.Equal((RecordErrors.BlankLine, 3L), (records[2].ErrorCode, records[2].Line));
        Assert.Equal("[\"b\"]", records[3].Args!.Value.GetRawText());
    }

    [Fact]
    public async Task Json_AnObjectIsKwargs_TheExplicitFormIsArgsAndKwargs()
    {
        var records = await ReadAllAsync(InputFormat.Json, """
            {"size": 3, "name": "x"}
            {"args": [1, "two"], "kwargs": {"k": true}}
            {"args": ["only"]}
            """);
        Assert.Null(records[0].Args);
        Assert.Equal(3, records[0].Kwargs!.Value.GetProperty("size").GetInt32());
        Assert.Equal("""[1, "two"]""", records[1].Args!.Value.GetRawText());
        Assert.True(records[1].Kwargs!.Value.GetProperty("k").GetBoolean());
        Assert.Equal("""["only"]""", records[2].Args!.Value.GetRawText());
        Assert.Null(records[2].Kwargs);
    }

    [Fact]
    public async Task Json_InvalidJsonAndNonObjects_AreErrorsWithTheirLineNumbers()
    {
        var records = await ReadAllAsync(InputFormat.Json, "{\"a\":1}\n{broken\n[1,2]\n{\"args\":3}\n\n{\"b\":2}\n");
        Assert.Equal(6, records.Count);
        Assert.False(records[0].IsError);
        Assert.Equal((RecordErrors.InvalidJson, 2L, "{broken"), (records[1].ErrorCode, records[1].Line, records[1].Raw));
        Assert.Equal((RecordErrors.InvalidJson, 3L), (records[2].ErrorCode, records[2].Line));
        Assert.Equal((RecordErrors.InvalidJson, 4L), (records[3].ErrorCode, records[3].Line));
        Assert.Equal((RecordErrors.BlankLine, 5L), (records[4].ErrorCode, records[4].Line));
        Assert.Equal(2, records[5].Kwargs!.Value.GetProperty("b").GetInt32());
    }

    [Fact]
    public async Task Words_EachWordIsOneRecord_NumberedAcrossLines_WithItsLine()
    {
        var records = await ReadAllAsync(InputFormat.Words, "one two\n\n  three\tfour  \nfive");
        Assert.Equal(["one", "two", "three", "four", "five"], records.Select(r => r.Args!.Value[0].GetString()));
        Assert.Equal([1L, 2L, 3L, 4L, 5L], records.Select(r => r.Number));
        Assert.Equal([1L, 1L, 3L, 3L, 4L], records.Select(r => r.Line));
    }

    [Theory]
    [InlineData(InputFormat.Text)]
    [InlineData(InputFormat.Json)]
    [InlineData(InputFormat.Words)]
    public async Task AnOverLongRecord_IsAnError_CutShort_AndTheNextLineStillReads(InputFormat format)
    {
        var huge = new string('x', 5000);
        var next = format == InputFormat.Json ? "{\"a\":1}" : "ok";
        var records = await ReadAllAsync(format, $"{huge}\n{next}\n", maxBytes: 100);
        Assert.Equal(2, records.Count);
        Assert.Equal((RecordErrors.TooLong, 1L), (records[0].ErrorCode, records[0].Line));
        Assert.True(records[0].Raw!.Length <= 200);
        Assert.False(records[1].IsError);
        Assert.Equal(2, records[1].Line);
    }

    [Fact]
    public async Task ALineOfExactlyTheLimit_IsNotTooLong()
    {
        var records = await ReadAllAsync(InputFormat.Text, new string('y', 100) + "\r\n", maxBytes: 100);
        Assert.False(Assert.Single(records).IsError);
        Assert.Equal(100, records[0].Args!.Value[0].GetString()!.Length);
    }

    [Fact]
    public void OutcomeJson_WritesRecordInputJobAndResult_OrErrorAndAttempts()
    {
        static string Line(RecordOutcome o)
        {
            var buffer = new System.Buffers.ArrayBufferWriter<byte>();
            using (var w = new Utf8JsonWriter(buffer)) OutcomeJson.Write(w, o);
            return Encoding.UTF8.GetString(buffer.WrittenSpan);
        }
        Assert.Equal("""{"record":3,"line":3,"input":"abc","job_id":"j","result":"ABC"}""",
            Line(new RecordOutcome { Record = 3, Line = 3, Input = JsonValues.String("abc"), JobId = "j", Result = JsonValues.String("ABC") }));
        Assert.Equal("""{"record":4,"input":"x","job_id":"k","error":{"code":"exit_code_2","message":"boom"},"attempts":3}""",
            Line(new RecordOutcome { Record = 4, Input = JsonValues.String("x"), JobId = "k", ErrorCode = "exit_code_2", ErrorMessage = "boom", Attempts = 3 }));
    }
}
