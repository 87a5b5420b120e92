using System.Collections;
using TunnelRouter.Cli;

// The composition root: the process's arguments and environment go in as plain values.
var env = new Dictionary<string, string>(StringComparer.Ordinal);
foreach (DictionaryEntry e in Environment.GetEnvironmentVariables())
    env[(string)e.Key] = (string?)e.Value ?? "";
return App.Run(args, env, Console.Out, Console.Error);
