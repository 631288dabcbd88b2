"""Speed benchmarks behind ``chatdoc bench ...``: ``llm`` (load/decode per quantization), ``run`` (end to
end), ``dialogue`` (per-turn latency and Redis bytes), ``ui`` (a real browser)."""
