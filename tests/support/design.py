"""Facts of docs/CONTRACT.md that several test modules check the code against (one copy here)."""

#: The environment variables the deployment must pass to the agent (docs/CONTRACT.md §7).
DESIGN_VARIABLES = (
    "SUPABASE_URL", "SUPABASE_KEY", "MACHINE_ID", "PLC_TYPE", "PLC_HOST", "PLC_PORT", "PLC_UNIT_ID",
    "PLC_WORD_ORDER", "PLC_TIMEOUT_S", "PLC_BULK_READ_SIZE", "PLC_MAX_GAP", "PARAMETER_LOGGING_INTERVAL",
    "STATUS_LOG_INTERVAL", "LOG_LEVEL", "HTTP_PORT", "SPOOL_PATH", "SPOOL_MAX_MB", "AGENT_COLOR", "ADMIN_TOKEN",
    "COMMAND_POLL_INTERVAL", "SHUTDOWN_TIMEOUT", "LOG_FORMAT", "LOG_DIR", "WATCHDOG_TIMEOUT",
)  # fmt: skip
