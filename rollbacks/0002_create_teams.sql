DROP TABLE host_teams;
DROP TABLE user_teams;
DROP TABLE teams;
DROP TYPE team_role;
