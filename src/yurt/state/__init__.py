"""yurt.state"""
