"""yurt.server"""
