"""The streaming side of votescore: Kafka topics and events in, Redis scores out."""
