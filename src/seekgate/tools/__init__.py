"""Tool calls for models without native tool use: prompt, grammar, parsing, streaming."""
