"""Reading decisions back: follow the decisions topic and show each decision to a person."""
