"""The vocabulary: the frames the engine reads, situations, domain configurations, emails."""
