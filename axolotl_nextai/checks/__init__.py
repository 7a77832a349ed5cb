"""Config checks, before anything loads: keys and values, typos, files, attention fallback, memory budget."""
