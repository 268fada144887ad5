"""yurt.client"""
