"""The ground floor: the one settings object, the base exception and its kinds, terminal tables, the machine."""
