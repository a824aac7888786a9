using Dts.Contracts;

namespace Dts.Core.Tests;

public sealed class JobTransitionsTests
{
    [Theory]
    [InlineData(JobState.Queued, JobState.Running, true)]
    [InlineData(JobState.Scheduled, JobState.Queued, true)]
    [InlineData(JobState.Running, JobState.Succeeded, true)]
    [InlineData(JobState.Running, JobState.AwaitingRetry, true)]
    [InlineData(JobState.AwaitingRetry, JobState.Queued, true)]
    [InlineData(JobState.Dead, JobState.Queued, true)]
    [InlineData(JobState.Succeeded, JobState.Queued, false)]
    [InlineData(JobState.Cancelled, JobState.Running, false)]
    [InlineData(JobState.Queued, JobState.Succeeded, false)]
    [InlineData(JobState.Scheduled, JobState.Running, false)]
    public void CanTransition_FollowsTheLifecycle(JobState from, JobState to, bool allowed) =>
        Assert.Equal(allowed, JobTransitions.CanTransition(from, to));

    [Fact]
    public void TerminalStates_LeadNowhere_ExceptDeadToRetry()
    {
        foreach (var to in Enum.GetValues<JobState>())
        {
            Assert.False(JobTransitions.CanTransition(JobState.Succeeded, to));
            Assert.False(JobTransitions.CanTransition(JobState.Cancelled, to));
            Assert.Equal(to == JobState.Queued, JobTransitions.CanTransition(JobState.Dead, to));
        }
    }

    [Fact]
    public void AfterFailure_RetriesWhileAttemptsRemain_ThenDead()
    {
        var now = DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture);
        var policy = new RetryPolicy(TimeSpan.FromSeconds(2), unitRandom: () => 1.0);
        var (s1, at1) = JobTransitions.AfterFailure(1, 3, true, now, policy);
        Assert.Equal(JobState.AwaitingRetry, s1);
        Assert.Equal(now.AddSeconds(2), at1);
        var (s2, at2) = JobTransitions.AfterFailure(2, 3, true, now, policy);
        Assert.Equal(JobState.AwaitingRetry, s2);
        Assert.Equal(now.AddSeconds(4), at2);
        Assert.Equal(JobState.Dead, JobTransitions.AfterFailure(3, 3, true, now, policy).State);
        Assert.Equal(JobState.Dead, JobTransitions.AfterFailure(1, 3, false, now, policy).State);
    }

    [Fact]
    public void AfterLeaseExpired_RequeuesUnlessAttemptsAreUsedUp()
    {
        Assert.Equal(JobState.Queued, JobTransitions.AfterLeaseExpired(1, 3));
        Assert.Equal(JobState.Dead, JobTransitions.AfterLeaseExpired(3, 3));
    }

    [Fact]
    public void WireNames_RoundTrip()
    {
        foreach (var s in Enum.GetValues<JobState>())
        {
            Assert.True(JobStates.TryParse(s.ToWire(), out var back));
            Assert.Equal(s, back);
        }
        Assert.False(JobStates.TryParse("Queued", out _));
    }
}

public sealed class RetryPolicyTests
{
    [Fact]
    public void Delay_DoublesAndStaysWithinJitterBounds()
    {
        var low = new RetryPolicy(TimeSpan.FromSeconds(1), TimeSpan.FromHours(1), () => 0.0);
        var high = new RetryPolicy(TimeSpan.FromSeconds(1), TimeSpan.FromHours(1), () => 1.0);
        for (var attempt = 1; attempt <= 8; attempt++)
        {
            var full = Math.Pow(2, attempt - 1);
            Assert.Equal(full / 2, low.DelayAfter(attempt).TotalSeconds, 3);
            Assert.Equal(full, high.DelayAfter(attempt).TotalSeconds, 3);
        }
    }

    [Fact]
    public void Delay_IsCapped()
    {
        var p = new RetryPolicy(TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(10), () => 1.0);
        Assert.Equal(TimeSpan.FromMinutes(10), p.DelayAfter(50));
        Assert.Equal(TimeSpan.FromMinutes(10), p.DelayAfter(int.MaxValue));
    }
}

public sealed class PriorityTests
{
    [Fact]
    public void Rank_OrdersClassesThenValues()
    {
        var ordered = new[]
        {
            new Priority(PriorityClass.High, 999), new Priority(PriorityClass.High, 0),
            new Priority(PriorityClass.Normal, 500), new Priority(PriorityClass.Normal, 0),
            new Priority(PriorityClass.Low, 999), new Priority(PriorityClass.Low, 0),
        };
        var ranks = ordered.Select(p => p.Rank).ToList();
        Assert.Equal(ranks.Order(), ranks);
        Assert.All(ordered, p => Assert.Equal(p, Priority.FromRank(p.Rank)));
    }
}
