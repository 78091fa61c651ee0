"""The local stack: real servers from pip packages on 127.0.0.1, managed by PID."""

from modstream.stack.supervisor import (
    ServerStatus,
    StackError,
    full_broker_store,
    restart_server,
    stack_status,
    start_service,
    start_stack,
    stop_stack,
)

__all__ = [
    "ServerStatus",
    "StackError",
    "full_broker_store",
    "restart_server",
    "stack_status",
    "start_service",
    "start_stack",
    "stop_stack",
]
