"""The ground floor: the one settings object, the base exception and its kinds, the settings table, terminal tables."""
