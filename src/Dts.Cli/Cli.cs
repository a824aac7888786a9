namespace Dts.Cli;

internal static class Cli
{
    /// <summary>Prints one line to stderr and gives the exit status for a usage or input error.</summary>
    public static int Fail(string message)
    {
        Console.Error.WriteLine("dts: " + message);
        return 2;
    }
}
