SELECT 'customers' AS table_name, 'null_key' AS check_name,
       COUNT(*) - COUNT(customer_key) AS rejected_rows
FROM bronze.customers
UNION ALL
SELECT 'customers', 'duplicate_key', COUNT(*) - COUNT(DISTINCT customer_key)
FROM bronze.customers
WHERE customer_key IS NOT NULL
UNION ALL
SELECT 'orders', 'null_key', COUNT(*)
FROM bronze.orders
WHERE order_key IS NULL OR customer_key IS NULL
UNION ALL
SELECT 'orders', 'duplicate_key', COUNT(*) - COUNT(DISTINCT order_key)
FROM bronze.orders
WHERE order_key IS NOT NULL AND customer_key IS NOT NULL
UNION ALL
SELECT 'orders', 'orphan_customer', deduped.n - joined.n
FROM (SELECT COUNT(DISTINCT order_key) AS n
      FROM bronze.orders
      WHERE order_key IS NOT NULL AND customer_key IS NOT NULL) deduped,
     (SELECT COUNT(*) AS n FROM silver.orders) joined
