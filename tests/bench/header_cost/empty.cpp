// An empty translation unit: what the compiler costs before any header.
