"""The bad-input corpus: files, API payloads, config and environment, damaged databases and artifacts,
permissions. Each case asserts the message, the status or exit code, that heald is still alive, and that
nothing was lost."""
