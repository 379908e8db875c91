"""Local AWS stack helpers (DynamoDB Local today); see README.md here."""
