"""Project-wide basics that every package may import: the user-error types, atomic writes, file
locks, YAML/JSON document loading and the cache folder. They depend on nothing else in the project."""
