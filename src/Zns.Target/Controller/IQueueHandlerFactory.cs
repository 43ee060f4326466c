namespace Zns.Target.Controller;

/// <summary>Creates the controller side of a new fabric queue (a connection that completed its transport handshake).</summary>
public interface IQueueHandlerFactory
{
    /// <summary>Called once per connection; the handler sees every capsule, starting with Fabrics Connect.</summary>
    IQueueHandler CreateQueueHandler(IQueueTransport transport);
}
