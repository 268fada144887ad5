"""yurt.jobspec"""
