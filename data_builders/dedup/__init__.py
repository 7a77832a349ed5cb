"""Near-duplicate removal in two steps, as MinHash dedup is staged in datatrove: embed, then select."""
