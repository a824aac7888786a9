using Npgsql;

namespace Dts.Storage.Postgres.Tests;

public sealed class PostgresConnectionStringsTests
{
    [Theory]
    [InlineData("postgres://u:p@db/dts", true)]
    [InlineData("POSTGRESQL://db", true)]
    [InlineData("Host=db;Username=u", true)]
    [InlineData("host=db", true)]
    [InlineData("/var/lib/dts/dts.db", false)]
    [InlineData("dts.db", false)]
    [InlineData("", false)]
    public void LooksLikePostgres(string argument, bool expected) =>
        Assert.Equal(expected, PostgresConnectionStrings.LooksLikePostgres(argument));

    [Fact]
    public void Url_IsConverted_WithDecodedCredentials_AndQueryKeywords()
    {
        var s = new NpgsqlConnectionStringBuilder(
            PostgresConnectionStrings.Normalize("postgres://dts%40corp:p%3Ass%2Fw%20rd@db.example.com:6543/jobs?sslmode=require&application_name=dts"));
        Assert.Equal("db.example.com", s.Host);
        Assert.Equal(6543, s.Port);
        Assert.Equal("jobs", s.Database);
        Assert.Equal("dts@corp", s.Username);
        Assert.Equal("p:ss/w rd", s.Password);
        Assert.Equal(SslMode.Require, s.SslMode);
        Assert.Equal("dts", s.ApplicationName);
    }

    [Fact]
    public void Url_WithoutPort_Uses5432_AndWithoutCredentials_HasNone()
    {
        var s = new NpgsqlConnectionStringBuilder(PostgresConnectionStrings.Normalize("postgresql://localhost/dts"));
        Assert.Equal("localhost", s.Host);
        Assert.Equal(5432, s.Port);
        Assert.Equal("dts", s.Database);
        Assert.Null(s.Username);
        Assert.Null(s.Password);
    }

    [Fact]
    public void Url_WithIpv6Host()
    {
        var s = new NpgsqlConnectionStringBuilder(PostgresConnectionStrings.Normalize("postgres://u@[::1]:5433/d"));
        Assert.Equal("::1", s.Host);
        Assert.Equal(5433, s.Port);
    }

    [Fact]
    public void KeywordString_PassesThrough()
    {
        var s = new NpgsqlConnectionStringBuilder(PostgresConnectionStrings.Normalize("Host=127.0.0.1;Port=5555;Username=postgres;Database=x"));
        Assert.Equal("127.0.0.1", s.Host);
        Assert.Equal(5555, s.Port);
        Assert.Equal("x", s.Database);
    }

    [Theory]
    [InlineData("postgres://u:topsecret@db:notaport/d")]
    [InlineData("postgres://u:topsecret@db:70000/d")]
    [InlineData("postgres://u:topsecret@/d")]
    [InlineData("postgres://u:topsecret@db/d?nosuchkeyword=1")]
    [InlineData("Host=db;Password=topsecret;Port=abc")]
    [InlineData("Host=db;Password=topsecret;NoSuchKeyword=1")]
    [InlineData("dts.db")]
    public void BadInput_IsRefused_WithoutEchoingThePassword(string argument)
    {
        var e = Assert.Throws<ArgumentException>(() => PostgresConnectionStrings.Normalize(argument));
        Assert.DoesNotContain("topsecret", e.Message, StringComparison.Ordinal);
        Assert.Contains("PostgreSQL", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("dts")]
    [InlineData("t_0123456789ab")]
    [InlineData("_x")]
    [InlineData("1abc")]
    public void SchemaNames_Valid(string schema) => PostgresStoreOptions.ValidateSchema(schema);

    [Theory]
    [InlineData("")]
    [InlineData("Dts")]
    [InlineData("a-b")]
    [InlineData("a\"b")]
    [InlineData("pg_temp")]
    [InlineData("abcdefghijabcdefghijabcdefghijabcdefghijabcdefghij")]
    public void SchemaNames_Invalid(string schema) =>
        Assert.Throws<ArgumentException>(() => PostgresStoreOptions.ValidateSchema(schema));

    [Fact]
    public void Description_NamesHostDatabaseAndSchema_NeverThePassword()
    {
        var store = new PostgresJobStore(new PostgresStoreOptions
        {
            ConnectionString = "postgres://u:topsecret@db.example.com:6000/jobs",
            Schema = "prod",
            SecretCipher = Dts.Testing.Postgres.PostgresTestDatabase.Cipher,
        });
        Assert.Equal("PostgreSQL db.example.com:6000/jobs schema prod", store.Description);
        Assert.DoesNotContain("topsecret", store.Description, StringComparison.Ordinal);
    }
}
