"""Managed (lifecycle) nodes: configure, activate, deactivate, cleanup, shutdown.

The agent, trainer, camera and actuator are ``rclpy.lifecycle`` nodes, so ``ros2 lifecycle``
(the ``~/change_state`` and ``~/get_state`` services) drives them: *configure* loads models or
opens devices, *activate* starts acting, training or sending, *deactivate* pauses (releasing
inputs), *cleanup* lets go of what configure took, *shutdown* closes the node. With
``autostart`` (the default) a node configures and activates itself at start, so launchers need
no lifecycle manager; the control services (``pamiq-ros pause``/``resume``) stay the short path.
"""

from abc import abstractmethod

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from typing_extensions import override

AUTOSTART_DESCRIPTION = (
    "Configure and activate at start (true: no lifecycle manager needed); false: wait "
    "unconfigured for ros2 lifecycle set <node> configure / activate."
)

LIFECYCLE_SERVICES = (
    "~/change_state", "~/get_state", "~/get_available_states", "~/get_available_transitions",
    "~/get_transition_graph",
)  # fmt: skip
"""The services rclpy's lifecycle adds to a managed node."""


class ManagedNode(LifecycleNode):
    """A lifecycle node whose transitions run the subclass's steps; a failure is logged.

    Subclasses implement :meth:`configure`, :meth:`activate`, :meth:`deactivate` and
    :meth:`cleanup`; each raises to fail its transition (the node stays where it was).
    """

    def __init__(self, node_name: str, **node_options: object) -> None:
        super().__init__(node_name, **node_options)  # type: ignore[arg-type]
        self.configured = False
        self.active = False
        self._failure: Exception | None = None

    def bring_up(self, autostart: bool) -> None:
        """With ``autostart``: configure and activate now.

        Raises:
            Exception: What configuring or activating raised (the node cannot work).
        """
        if not autostart:
            self.get_logger().info("unconfigured: waiting for ros2 lifecycle set ... configure")
            return
        for trigger in (self.trigger_configure, self.trigger_activate):
            if trigger() != TransitionCallbackReturn.SUCCESS:
                failure, self._failure = self._failure, None
                raise failure or RuntimeError("a lifecycle transition failed at start")

    @abstractmethod
    def configure(self) -> None:
        """Loads models, opens devices: what activate needs."""

    @abstractmethod
    def activate(self) -> None:
        """Starts the node's work (acting, training, sending)."""

    @abstractmethod
    def deactivate(self) -> None:
        """Pauses the work, releasing inputs."""

    @abstractmethod
    def cleanup(self) -> None:
        """Lets go of what configure took."""

    def _transition(self, name: str, step: object) -> TransitionCallbackReturn:
        try:
            step()  # type: ignore[operator]
        except Exception as error:
            self._failure = error
            self.get_logger().error(f"{name} failed: {type(error).__name__}: {error}")
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(f"lifecycle: {name} done")
        return TransitionCallbackReturn.SUCCESS

    @override
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = self._transition("configure", self.configure)
        self.configured = result == TransitionCallbackReturn.SUCCESS
        return result

    @override
    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = self._transition("activate", self.activate)
        self.active = result == TransitionCallbackReturn.SUCCESS
        return result

    @override
    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = False
        return self._transition("deactivate", self.deactivate)

    @override
    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = self._transition("cleanup", self.cleanup)
        self.configured = result != TransitionCallbackReturn.SUCCESS
        return result

    @override
    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Deactivates and cleans up as needed; the process's close() ends the rest."""
        if self.active:
            self.on_deactivate(state)
        if self.configured:
            return self.on_cleanup(state)
        return TransitionCallbackReturn.SUCCESS
