"""Reading a customer's directory into a snapshot."""
