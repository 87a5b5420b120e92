namespace TunnelRouter.Core;

/// <summary>A table or protocol name the host's rt_tables or rt_protos files lack, as a parse resolved it: data the
/// applier writes to TunnelRouter's drop-in (under the host lock), never written by the parse itself.</summary>
/// <param name="Field">what asked for the name (a Tables entry, the hook's Table, Protocol): errors name it.</param>
public sealed record NewName(NewName.Kinds Kind, uint Id, string Name, string Field)
{
    public enum Kinds { Table, Protocol }
}
