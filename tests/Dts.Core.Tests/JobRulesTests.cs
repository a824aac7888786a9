using System.Text.Json;
using Dts.Contracts;

namespace Dts.Core.Tests;

public sealed class JobRulesTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.Parse("2026-06-01T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture);

    private static SubmitJobRequest Parse(string json) => JsonSerializer.Deserialize(json, DtsJsonContext.Default.SubmitJobRequest)!;

    [Fact]
    public void Normalize_FillsDefaults()
    {
        var job = JobRules.Normalize(Parse("""{"function":"f"}"""), "alice", Now);
        Assert.Equal("[]", job.ArgsJson);
        Assert.Equal("{}", job.KwargsJson);
        Assert.Equal(Priority.Normal, job.Priority);
        Assert.Equal(JobRules.DefaultMaxAttempts, job.MaxAttempts);
        Assert.Equal(JobRules.DefaultRetention, job.Retention);
        Assert.Equal(Now, job.RunAt);
        Assert.Equal(JobState.Queued, JobRules.InitialState(job, Now));
        Assert.True(JobIds.IsWellFormed(job.Id));
    }

    [Fact]
    public void Normalize_DelayMakesTheJobScheduled()
    {
        var job = JobRules.Normalize(Parse("""{"function":"f","delay_seconds":30}"""), "alice", Now);
        Assert.Equal(Now.AddSeconds(30), job.RunAt);
        Assert.Equal(JobState.Scheduled, JobRules.InitialState(job, Now));
    }

    [Fact]
    public void Normalize_RunAtInThePast_RunsNow()
    {
        var job = JobRules.Normalize(Parse("""{"function":"f","run_at":"2020-01-01T00:00:00Z"}"""), "alice", Now);
        Assert.Equal(Now, job.RunAt);
    }

    [Theory]
    [InlineData("""{"function":""}""", "function")]
    [InlineData("""{"function":"-x"}""", "function")]
    [InlineData("""{"function":"f","unique_key":""}""", "unique_key")]
    [InlineData("""{"function":"f","tags":[""]}""", "tags")]
    [InlineData("""{"function":"f","retention_seconds":-1}""", "retention_seconds")]
    [InlineData("""{"function":"f","delay_seconds":99999999999}""", "delay_seconds")]
    [InlineData("""{"function":"f","max_attempts":101}""", "max_attempts")]
    public void Normalize_RefusesBadValues_NamingTheField(string json, string field)
    {
        var ex = Assert.Throws<DtsException>(() => JobRules.Normalize(Parse(json), "alice", Now, "jobs[3]"));
        Assert.Equal(ErrorCodes.InvalidField, ex.Error);
        Assert.Equal($"jobs[3].{field}", ex.Field);
    }

    [Fact]
    public void JobIds_AreTimeOrderedAndDistinct()
    {
        var a = JobIds.New(Now);
        var b = JobIds.New(Now.AddMilliseconds(1));
        Assert.NotEqual(JobIds.New(Now), JobIds.New(Now));
        Assert.True(string.CompareOrdinal(a, b) < 0);
        Assert.False(JobIds.IsWellFormed("ABCDEF0123456789ABCDEF0123456789"));
        Assert.False(JobIds.IsWellFormed("123"));
    }
}
