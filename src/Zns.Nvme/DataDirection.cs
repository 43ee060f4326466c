namespace Zns.Nvme;

/// <summary>Which way a command's data moves (NVMe Base, opcode bits 1:0).</summary>
public enum DataDirection : byte
{
    /// <summary>No data.</summary>
    None = 0,
    /// <summary>Host to controller (writes).</summary>
    HostToController = 1,
    /// <summary>Controller to host (reads).</summary>
    ControllerToHost = 2,
    /// <summary>Both ways; no command this target implements.</summary>
    Bidirectional = 3,
}
