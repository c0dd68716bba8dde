"""Organizations (employers, workforce boards, colleges…), their staff, cohorts, invitations and consent."""
