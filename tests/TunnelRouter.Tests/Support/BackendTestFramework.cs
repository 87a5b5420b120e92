using Xunit;
using Xunit.Abstractions;
using Xunit.Sdk;

[assembly: TestFramework("TunnelRouter.Tests.Support.BackendTestFramework", "TunnelRouter.Tests")]

namespace TunnelRouter.Tests.Support;

/// <summary>
/// The kernel backend a test runs against. Every test of a class in a <c>*.Kernel</c> namespace runs once
/// per backend (netlink and ip), each run showing its backend in its name ("... [ip]"), without a line of
/// code in the test: <see cref="TunnelRouterProcess"/> passes the backend to the binary, and in-process
/// tests ask <see cref="Current"/>. <see cref="BackendIndependentAttribute"/> opts a test out.
/// </summary>
public static class KernelBackend
{
    public static readonly string[] All = ["netlink", "ip"];

    static readonly AsyncLocal<string?> _current = new();

    /// <summary>The backend of the running test; null outside per-backend tests.</summary>
    public static string? Current
    {
        get => _current.Value;
        internal set => _current.Value = value;
    }

    /// <summary>Only these backends (comma-separated), for a quicker local run: TUNNEL_ROUTER_TEST_BACKENDS=netlink.</summary>
    internal static string[] Selected =>
        Environment.GetEnvironmentVariable("TUNNEL_ROUTER_TEST_BACKENDS") is { Length: > 0 } only
            ? only.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            : All;

    internal static bool RunsPerBackend(ITestMethod method) =>
        method.TestClass.Class.Name.Contains(".Kernel.", StringComparison.Ordinal)
        && !method.TestClass.Class.GetCustomAttributes(typeof(BackendIndependentAttribute)).Any()
        && !method.Method.GetCustomAttributes(typeof(BackendIndependentAttribute)).Any();
}

/// <summary>A kernel test that runs once, whatever the backend (it picks its backends itself, or has none).</summary>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Method)]
public sealed class BackendIndependentAttribute : Attribute;

public sealed class BackendTestFramework(IMessageSink messageSink) : XunitTestFramework(messageSink)
{
    protected override ITestFrameworkDiscoverer CreateDiscoverer(IAssemblyInfo assemblyInfo) =>
        new Discoverer(assemblyInfo, SourceInformationProvider, DiagnosticMessageSink);

    sealed class Discoverer(IAssemblyInfo assembly, ISourceInformationProvider source, IMessageSink diagnostics)
        : XunitTestFrameworkDiscoverer(assembly, source, diagnostics)
    {
        protected override bool FindTestsForMethod(ITestMethod testMethod, bool includeSourceInformation, IMessageBus messageBus,
            ITestFrameworkDiscoveryOptions discoveryOptions)
        {
            if (!KernelBackend.RunsPerBackend(testMethod))
                return base.FindTestsForMethod(testMethod, includeSourceInformation, messageBus, discoveryOptions);
            var bus = new PerBackendBus(messageBus, DiagnosticMessageSink, discoveryOptions);
            return base.FindTestsForMethod(testMethod, includeSourceInformation, bus, discoveryOptions);
        }
    }

    /// <summary>Turns each discovered test case into one per backend.</summary>
    sealed class PerBackendBus(IMessageBus inner, IMessageSink diagnostics, ITestFrameworkDiscoveryOptions options) : IMessageBus
    {
        public bool QueueMessage(IMessageSinkMessage message)
        {
            if (message is not ITestCaseDiscoveryMessage { TestCase: var testCase }) return inner.QueueMessage(message);
            var display = options.MethodDisplayOrDefault();
            var displayOptions = options.MethodDisplayOptionsOrDefault();
            var keepGoing = true;
            foreach (var backend in KernelBackend.Selected)
            {
                ITestCase perBackend = testCase switch
                {
                    XunitTheoryTestCase t => new BackendTheoryTestCase(backend, diagnostics, display, displayOptions, t.TestMethod),
                    XunitTestCase x when x.GetType() == typeof(XunitTestCase) =>
                        new BackendTestCase(backend, diagnostics, display, displayOptions, x.TestMethod, x.TestMethodArguments),
                    _ => testCase,
                };
                keepGoing &= inner.QueueMessage(new TestCaseDiscoveryMessage(perBackend));
                if (ReferenceEquals(perBackend, testCase)) break;
            }
            return keepGoing;
        }

        public void Dispose() { }
    }
}

public sealed class BackendTestCase : XunitTestCase
{
    [Obsolete("Called by the de-serializer; should only be called by deriving classes for de-serialization purposes")]
    public BackendTestCase() { }

    public BackendTestCase(string backend, IMessageSink diagnostics, TestMethodDisplay display, TestMethodDisplayOptions displayOptions,
        ITestMethod testMethod, object[]? arguments)
        : base(diagnostics, display, displayOptions, testMethod, arguments) => Backend = backend;

    public string Backend { get; private set; } = "";

    protected override void Initialize()
    {
        base.Initialize();
        DisplayName = $"{DisplayName} [{Backend}]";
    }

    protected override string GetUniqueID() => $"{base.GetUniqueID()}/{Backend}";

    public override void Serialize(IXunitSerializationInfo data)
    {
        data.AddValue(nameof(Backend), Backend);
        base.Serialize(data);
    }

    public override void Deserialize(IXunitSerializationInfo data)
    {
        Backend = data.GetValue<string>(nameof(Backend));
        base.Deserialize(data);
    }

    public override async Task<RunSummary> RunAsync(IMessageSink diagnostics, IMessageBus bus, object[] constructorArguments,
        ExceptionAggregator aggregator, CancellationTokenSource cancellation)
    {
        KernelBackend.Current = Backend;
        return await base.RunAsync(diagnostics, bus, constructorArguments, aggregator, cancellation);
    }
}

public sealed class BackendTheoryTestCase : XunitTheoryTestCase
{
    [Obsolete("Called by the de-serializer; should only be called by deriving classes for de-serialization purposes")]
    public BackendTheoryTestCase() { }

    public BackendTheoryTestCase(string backend, IMessageSink diagnostics, TestMethodDisplay display, TestMethodDisplayOptions displayOptions,
        ITestMethod testMethod)
        : base(diagnostics, display, displayOptions, testMethod) => Backend = backend;

    public string Backend { get; private set; } = "";

    protected override void Initialize()
    {
        base.Initialize();
        DisplayName = $"{DisplayName} [{Backend}]";
    }

    protected override string GetUniqueID() => $"{base.GetUniqueID()}/{Backend}";

    public override void Serialize(IXunitSerializationInfo data)
    {
        data.AddValue(nameof(Backend), Backend);
        base.Serialize(data);
    }

    public override void Deserialize(IXunitSerializationInfo data)
    {
        Backend = data.GetValue<string>(nameof(Backend));
        base.Deserialize(data);
    }

    public override async Task<RunSummary> RunAsync(IMessageSink diagnostics, IMessageBus bus, object[] constructorArguments,
        ExceptionAggregator aggregator, CancellationTokenSource cancellation)
    {
        KernelBackend.Current = Backend;
        return await base.RunAsync(diagnostics, bus, constructorArguments, aggregator, cancellation);
    }
}
