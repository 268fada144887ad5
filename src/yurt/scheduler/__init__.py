"""yurt.scheduler"""
