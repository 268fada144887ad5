"""yurt.agent"""
